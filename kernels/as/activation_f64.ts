// Activations over f64: relu, gelu (tanh form), tanh, sigmoid, the f64 twins of activation.ts.
// SIMD body on f64x2, scalar tail running the same vector code on one lane. Reference: the
// float64 formulas (Math.tanh, Math.exp) in test/activation-f64.test.ts.
import { GELU64_2K, GELU64_2KC, sigmoidv64, tanhv64 } from "./activation_math_f64";
import { madd } from "./math";

/** relu(x) = x > 0 ? x : 0, NaN kept (pmax returns its first operand when x < 0 is false). */
export function relu_f64(x: usize, out: usize, n: i32): void {
  const zero = f64x2.splat(0);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, f64x2.pmax(v128.load(x + o), zero));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    const v = load<f64>(x + o);
    store<f64>(out + o, v < 0 ? 0 : v);
  }
}

// gelu(x) = x·σ(u), u = 2√(2/π)(x + 0.044715x³) (see activation.ts for why the σ form).
// @ts-ignore: decorator
@inline
function geluv64(x: v128): v128 {
  const u = f64x2.mul(x, madd<f64>(f64x2.mul(x, x), f64x2.splat(GELU64_2KC), f64x2.splat(GELU64_2K)));
  const s = sigmoidv64(u);
  // x = -inf meets σ = 0: the limit is -0, not -inf·0 = NaN.
  const negZero = v128.and(x, i64x2.splat(0x8000000000000000));
  return v128.bitselect(negZero, f64x2.mul(x, s), f64x2.eq(s, f64x2.splat(0)));
}

export function gelu_f64(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, geluv64(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(out + o, f64x2.extract_lane(geluv64(f64x2.splat(load<f64>(x + o))), 0));
  }
}

export function tanh_f64(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, tanhv64(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(out + o, f64x2.extract_lane(tanhv64(f64x2.splat(load<f64>(x + o))), 0));
  }
}

export function sigmoid_f64(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 3;
    v128.store(out + o, sigmoidv64(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(out + o, f64x2.extract_lane(sigmoidv64(f64x2.splat(load<f64>(x + o))), 0));
  }
}
