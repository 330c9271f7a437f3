// Fused, numerically stable softmax cross-entropy with integer labels, mean over the rows:
//   m_r = max_c x[r, c],   loss = (1/rows) Σ_r [ log Σ_c exp(x[r, c] − m_r) + m_r − x[r, y_r] ]
//   dx[r, c] = (softmax(x_r)[c] − [c = y_r]) · dscale          (only when dx ≠ 0)
// The forward pass calls it without dx; the backward pass calls it again with dx and
// dscale = (the loss's gradient) / rows, so nothing but the logits is kept between the two.
// Labels must already lie in [0, cols) (first_outside_i32). Returns the mean loss, summed in f64;
// any non-finite logit (even a −inf that would not change the loss) makes it NaN. f32 takes
// e^x four lanes at a time (expv, math.ts); f64 has no vector exp here, so its exp pass is
// scalar. Reference: the float64 loop in test/ops-loss.test.ts.

import { expv } from "./math";

@inline
function hmax<T>(v: v128): T {
  if (sizeof<T>() == 4) {
    const a = max<T>(v128.extract_lane<T>(v, 0), v128.extract_lane<T>(v, 1));
    const b = max<T>(v128.extract_lane<T>(v, 2), v128.extract_lane<T>(v, 3));
    return max<T>(a, b);
  }
  return max<T>(v128.extract_lane<T>(v, 0), v128.extract_lane<T>(v, 1));
}

@inline
function hsum<T>(v: v128): f64 {
  if (sizeof<T>() == 4) {
    return (
      <f64>v128.extract_lane<T>(v, 0) +
      <f64>v128.extract_lane<T>(v, 1) +
      <f64>v128.extract_lane<T>(v, 2) +
      <f64>v128.extract_lane<T>(v, 3)
    );
  }
  return <f64>v128.extract_lane<T>(v, 0) + <f64>v128.extract_lane<T>(v, 1);
}

@inline
function expT<T>(v: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.exp(<f32>v);
  return <T>Math.exp(<f64>v);
}

@inline
function logT<T>(v: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.log(<f32>v);
  return <T>Math.log(<f64>v);
}

@inline
function softmaxXent<T>(x: usize, labels: usize, rows: i32, cols: i32, dx: usize, dscale: T): f64 {
  const lanes = 16 / sizeof<T>();
  const rowBytes = <usize>cols * sizeof<T>();
  let total: f64 = 0;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    // The max, and Σ (x − x), which is 0 when every logit is finite and NaN otherwise.
    let vm = v128.splat<T>(<T>-Infinity);
    let vz = v128.splat<T>(<T>0);
    let c = 0;
    for (; c + lanes <= cols; c += lanes) {
      const v = v128.load(xr + <usize>c * sizeof<T>());
      vm = v128.max<T>(vm, v);
      vz = v128.add<T>(vz, v128.sub<T>(v, v));
    }
    let m = hmax<T>(vm);
    let z = hsum<T>(vz);
    for (; c < cols; c++) {
      const v = load<T>(xr + <usize>c * sizeof<T>());
      m = max<T>(m, v);
      z += <f64>(v - v);
    }

    const dr = dx + <usize>r * rowBytes;
    let s: T = 0;
    c = 0;
    if (sizeof<T>() == 4) {
      const vmx = v128.splat<T>(m);
      let vs = v128.splat<T>(<T>0);
      for (; c + lanes <= cols; c += lanes) {
        const e = expv(v128.sub<T>(v128.load(xr + <usize>c * sizeof<T>()), vmx));
        vs = v128.add<T>(vs, e);
        if (dx) v128.store(dr + <usize>c * sizeof<T>(), e);
      }
      s = <T>hsum<T>(vs);
    }
    for (; c < cols; c++) {
      const e = expT<T>(load<T>(xr + <usize>c * sizeof<T>()) - m);
      s += e;
      if (dx) store<T>(dr + <usize>c * sizeof<T>(), e);
    }
    const y = load<i32>(labels + (<usize>r << 2));
    total += <f64>(logT<T>(s) + m - load<T>(xr + <usize>y * sizeof<T>())) + z;

    if (dx) {
      const k = dscale / s;
      const vk = v128.splat<T>(k);
      for (c = 0; c + lanes <= cols; c += lanes) {
        const o = dr + <usize>c * sizeof<T>();
        v128.store(o, v128.mul<T>(v128.load(o), vk));
      }
      for (; c < cols; c++) {
        const o = dr + <usize>c * sizeof<T>();
        store<T>(o, load<T>(o) * k);
      }
      const oy = dr + <usize>y * sizeof<T>();
      store<T>(oy, load<T>(oy) - dscale);
    }
  }
  return total / <f64>rows;
}

export function softmax_xent_f32(x: usize, labels: usize, rows: i32, cols: i32, dx: usize, dscale: f32): f64 {
  return softmaxXent<f32>(x, labels, rows, cols, dx, dscale);
}

export function softmax_xent_f64(x: usize, labels: usize, rows: i32, cols: i32, dx: usize, dscale: f64): f64 {
  return softmaxXent<f64>(x, labels, rows, cols, dx, dscale);
}
