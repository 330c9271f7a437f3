// Activations over f32: relu, gelu (tanh form), tanh, sigmoid. SIMD body, scalar tail running
// the same vector code on one lane. Reference: float64 formulas in test/elementwise-math.test.ts
// (relu: test/elementwise.test.ts).
import { GELU_2K, GELU_2KC, madd, sigmoidv, tanhv } from "./math";

/** relu(x) = x > 0 ? x : 0, NaN kept (pmax returns its first operand when x < 0 is false). */
export function relu_f32(x: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.pmax(v128.load(x + o), zero));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v < 0 ? 0 : v);
  }
}

// gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) = x·σ(u), u = 2√(2/π)(x + 0.044715x³), since
// ½(1 + tanh(u/2)) = σ(u); the σ form keeps its relative accuracy for x ≪ 0, where 1 + tanh cancels.
// Max error: 3·(1 + |u|) ulp (measured 2.6·(1 + |u|)): u's own f32 rounding, ~2 ulp, is
// amplified by e^u in the tail where gelu → 0; elsewhere |u| is small and so is the error.
// @ts-ignore: decorator
@inline
function geluv(x: v128): v128 {
  const u = f32x4.mul(x, madd<f32>(f32x4.mul(x, x), f32x4.splat(GELU_2KC), f32x4.splat(GELU_2K)));
  const s = sigmoidv(u);
  // x = -inf meets σ = 0: the limit is -0, not -inf·0 = NaN.
  return v128.bitselect(v128.and(x, i32x4.splat(0x80000000)), f32x4.mul(x, s), f32x4.eq(s, f32x4.splat(0)));
}

export function gelu_f32(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, geluv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(geluv(f32x4.splat(load<f32>(x + o))), 0));
  }
}

export function tanh_f32(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, tanhv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(tanhv(f32x4.splat(load<f32>(x + o))), 0));
  }
}

export function sigmoid_f32(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, sigmoidv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(sigmoidv(f32x4.splat(load<f32>(x + o))), 0));
  }
}
