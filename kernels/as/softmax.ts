// Row-wise softmax and log-softmax of a [rows, cols] f32 matrix, stable: each row is shifted by
// its max m first, so no exp overflows. softmax: three passes per row (max; e = exp(x − m)
// stored and summed; e · (1/Σe)). log-softmax: (max; Σ exp(x − m); (x − m) − ln Σ).
// The sums add each group of 4 vectors in f32 and carry it in f64 (relative error ≤ 3·2⁻²⁴).
// Error bounds: softmax ≤ (8 + |x − m|)·2⁻²⁴ relative (exp's 1 ulp, the f32 rounding of x − m
// amplified by exp, the sum, 1/Σ and the product); log-softmax ≤ 2·2⁻²⁴·(|x − m| + ln Σ) + 4·2⁻²⁴
// absolute.
// A row holding NaN, or +inf, or only −inf comes out all NaN (as torch does).
// Reference: the float64 formulas in test/softmax.test.ts.
import { expv } from "./math";

// @ts-ignore: decorator
@inline
function rowMax(x: usize, cols: i32): f32 {
  // pmax skips NaN; a NaN in the row still reaches every output through the sum.
  let a = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= cols; j += 4) a = f32x4.pmax(a, v128.load(x + (<usize>j << 2)));
  let m = max(max(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
  for (; j < cols; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v > m) m = v;
  }
  return m;
}

// Σ_j exp(x[j] − m), and out[j] = exp(x[j] − m) when `keep` is set.
// @ts-ignore: decorator
@inline
function expSum(x: usize, out: usize, cols: i32, m: f32, keep: bool): f64 {
  const vm = f32x4.splat(m);
  let acc = f64x2.splat(0);
  let j = 0;
  for (; j + 16 <= cols; j += 16) {
    const o = <usize>j << 2;
    const e0 = expv(f32x4.sub(v128.load(x + o), vm));
    const e1 = expv(f32x4.sub(v128.load(x + o, 16), vm));
    const e2 = expv(f32x4.sub(v128.load(x + o, 32), vm));
    const e3 = expv(f32x4.sub(v128.load(x + o, 48), vm));
    if (keep) {
      v128.store(out + o, e0);
      v128.store(out + o, e1, 16);
      v128.store(out + o, e2, 32);
      v128.store(out + o, e3, 48);
    }
    const s = f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3));
    acc = f64x2.add(acc, f64x2.promote_low_f32x4(s));
    acc = f64x2.add(acc, f64x2.promote_low_f32x4(i8x16.shuffle(s, s, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)));
  }
  let sum = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  for (; j < cols; j++) {
    const o = <usize>j << 2;
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(x + o) - m)), 0);
    if (keep) store<f32>(out + o, e);
    sum += e;
  }
  return sum;
}

export function softmax_f32(x: usize, out: usize, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const yr = out + <usize>r * rowBytes;
    const m = rowMax(xr, cols);
    const inv = <f32>(1 / expSum(xr, yr, cols, m, true));
    const vinv = f32x4.splat(inv);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      v128.store(yr + o, f32x4.mul(v128.load(yr + o), vinv));
    }
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      store<f32>(yr + o, load<f32>(yr + o) * inv);
    }
  }
}

export function log_softmax_f32(x: usize, out: usize, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const yr = out + <usize>r * rowBytes;
    const m = rowMax(xr, cols);
    const ls = <f32>Math.log(expSum(xr, 0, cols, m, false));
    const vm = f32x4.splat(m);
    const vls = f32x4.splat(ls);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      v128.store(yr + o, f32x4.sub(f32x4.sub(v128.load(xr + o), vm), vls));
    }
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      store<f32>(yr + o, load<f32>(xr + o) - m - ls);
    }
  }
}
