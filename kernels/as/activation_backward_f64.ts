// Backward forms of the activations over f64 (the f64 twins of activation_backward.ts):
// out = dy · f'(…). tanh and sigmoid take the forward output y; relu and gelu the input x.
// SIMD body on f64x2, scalar tail running the same vector code on one lane. Reference: float64
// derivatives in test/activation-f64.test.ts.
import { expNegAbs64, GELU64_2K, GELU64_2KC, GELU64_6KC } from "./activation_math_f64";
import { madd } from "./math";

/** dx = x > 0 ? dy : 0 (NaN x gives 0, as torch's threshold_backward). */
export function relu_backward_f64(x: usize, dy: usize, out: usize, n: i32): void {
  const zero = f64x2.splat(0);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, v128.and(v128.load(dy + o), f64x2.gt(v128.load(x + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(out + o, load<f64>(x + o) > 0 ? load<f64>(dy + o) : 0);
  }
}

// gelu'(x) = σ(u) + x·σ(u)(1 − σ(u))·u'(x), u'(x) = 2√(2/π)(1 + 3·0.044715x²); with
// z = e^{-|u|}, s = 1/(1 + z): σ(u) = s (u ≥ 0) or z·s (u < 0), σ(1 − σ) = z·s².
// @ts-ignore: decorator
@inline
function geluGradv64(x: v128, dy: v128): v128 {
  const x2 = f64x2.mul(x, x);
  const u = f64x2.mul(x, madd<f64>(x2, f64x2.splat(GELU64_2KC), f64x2.splat(GELU64_2K)));
  const du = madd<f64>(x2, f64x2.splat(GELU64_6KC), f64x2.splat(GELU64_2K));
  const z = expNegAbs64(u);
  const s = f64x2.div(f64x2.splat(1), f64x2.add(f64x2.splat(1), z));
  const sig = v128.bitselect(f64x2.mul(z, s), s, f64x2.lt(u, f64x2.splat(0)));
  let term = f64x2.mul(f64x2.mul(x, du), f64x2.mul(z, f64x2.mul(s, s)));
  // z = 0 (|u| ≳ 745, x = ±inf): the term's limit is 0, not inf·0 = NaN.
  term = v128.andnot(term, f64x2.eq(z, f64x2.splat(0)));
  return f64x2.mul(dy, f64x2.add(sig, term));
}

export function gelu_backward_f64(x: usize, dy: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, geluGradv64(v128.load(x + o), v128.load(dy + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    const g = geluGradv64(f64x2.splat(load<f64>(x + o)), f64x2.splat(load<f64>(dy + o)));
    store<f64>(out + o, f64x2.extract_lane(g, 0));
  }
}

/** dx = dy·(1 − y²) with y = tanh x, as dy·(1 − y)(1 + y): no cancellation as |y| → 1. */
export function tanh_backward_f64(y: usize, dy: usize, out: usize, n: i32): void {
  const one = f64x2.splat(1);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    const yv = v128.load(y + o);
    const d = f64x2.mul(f64x2.sub(one, yv), f64x2.add(one, yv));
    v128.store(out + o, f64x2.mul(v128.load(dy + o), d));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    const yv = load<f64>(y + o);
    store<f64>(out + o, load<f64>(dy + o) * ((1 - yv) * (1 + yv)));
  }
}

/** dx = dy·y·(1 − y) with y = σ(x). */
export function sigmoid_backward_f64(y: usize, dy: usize, out: usize, n: i32): void {
  const one = f64x2.splat(1);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    const yv = v128.load(y + o);
    v128.store(out + o, f64x2.mul(v128.load(dy + o), f64x2.mul(yv, f64x2.sub(one, yv))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    const yv = load<f64>(y + o);
    store<f64>(out + o, load<f64>(dy + o) * (yv * (1 - yv)));
  }
}
