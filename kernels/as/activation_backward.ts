// Backward forms of the activations over f32: out = dy · f'(…), the vector-Jacobian products
// reverse-mode autodiff needs. tanh and sigmoid take the forward output y (what autodiff
// keeps); relu and gelu take the input x. SIMD body, scalar tail running the same vector code
// on one lane. Reference: float64 derivatives in test/elementwise.test.ts (gelu:
// test/elementwise-math.test.ts).
import { expNegAbs, GELU_2K, GELU_2KC, madd } from "./math";

/** dx = x > 0 ? dy : 0 (NaN x gives 0, as torch's threshold_backward). */
export function relu_backward_f32(x: usize, dy: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, v128.and(v128.load(dy + o), f32x4.gt(v128.load(x + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(x + o) > 0 ? load<f32>(dy + o) : 0);
  }
}

// gelu(x) = x·σ(u) with u = 2√(2/π)(x + 0.044715x³), so
//   gelu'(x) = σ(u) + x·σ(u)(1 − σ(u))·u'(x),  u'(x) = 2√(2/π)(1 + 3·0.044715x²).
// With z = e^{-|u|} and s = 1/(1 + z): σ(u) = s (u ≥ 0) or z·s (u < 0), σ(1 − σ) = z·s².
// ½(1 + tanh) would cancel; this form does not, and it overflows nowhere.
// Max error: 4·(1 + |u|)·2⁻²⁴·|dy|·(|σ| + |x·σ(1 − σ)·u'|) (measured 2.8), plus 2⁻¹⁴⁹-sized
// terms where σ or z leave the f32 range (|u| > 87).
// @ts-ignore: decorator
@inline
function geluGradv(x: v128, dy: v128): v128 {
  const x2 = f32x4.mul(x, x);
  const u = f32x4.mul(x, madd<f32>(x2, f32x4.splat(GELU_2KC), f32x4.splat(GELU_2K)));
  const du = madd<f32>(x2, f32x4.splat(3 * GELU_2KC), f32x4.splat(GELU_2K));
  const z = expNegAbs(u);
  const s = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), z));
  const sig = v128.bitselect(f32x4.mul(z, s), s, f32x4.lt(u, f32x4.splat(0)));
  let term = f32x4.mul(f32x4.mul(x, du), f32x4.mul(z, f32x4.mul(s, s)));
  // z = 0 (|u| ≳ 104, x = ±inf): the term's limit is 0, not inf·0 = NaN.
  term = v128.andnot(term, f32x4.eq(z, f32x4.splat(0)));
  return f32x4.mul(dy, f32x4.add(sig, term));
}

export function gelu_backward_f32(x: usize, dy: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, geluGradv(v128.load(x + o), v128.load(dy + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = geluGradv(f32x4.splat(load<f32>(x + o)), f32x4.splat(load<f32>(dy + o)));
    store<f32>(out + o, f32x4.extract_lane(g, 0));
  }
}

/** dx = dy·(1 − y²) with y = tanh x, as dy·(1 − y)(1 + y): no cancellation as |y| → 1. */
export function tanh_backward_f32(y: usize, dy: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const yv = v128.load(y + o);
    const d = f32x4.mul(f32x4.sub(one, yv), f32x4.add(one, yv));
    v128.store(out + o, f32x4.mul(v128.load(dy + o), d));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const yv = load<f32>(y + o);
    store<f32>(out + o, load<f32>(dy + o) * ((1 - yv) * (1 + yv)));
  }
}

/** dx = dy·y·(1 − y) with y = σ(x). */
export function sigmoid_backward_f32(y: usize, dy: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const yv = v128.load(y + o);
    v128.store(out + o, f32x4.mul(v128.load(dy + o), f32x4.mul(yv, f32x4.sub(one, yv))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const yv = load<f32>(y + o);
    store<f32>(out + o, load<f32>(dy + o) * (yv * (1 - yv)));
  }
}
