// Vector e^x, e^x − 1 (for tanh) and the logistic building blocks on f64x2, inlined into the
// f64 activation kernels (activation_f64.ts, activation_backward_f64.ts); not exported from
// index.ts: building blocks, not kernels.
//
// Both use x = n·ln2 + r with |r| ≤ ln2/2 and the Taylor series of e^r − 1 − r to degree 13
// (truncation error r¹⁴/14! < 4e-18 relative: below f64's 1.1e-16). The max errors below were
// measured against mpmath (200 bits) on 400k inputs (random bit patterns; uniform in [-2, 2],
// [-40, 40] and [-747, -37]) in both builds (simd, relaxed); test/activation-f64.test.ts holds
// the kernels to them against float64 Math.*.
//
// Edges: NaN in gives NaN out; e^x overflows to inf above 709.78…, underflows through the
// subnormals to 0 below -745.13…; e^{-inf} = 0.
import { madd } from "./math";

const LOG2E: f64 = 1.4426950408889634;
// ln 2 split in two (fdlibm's): LN2_HI has 32 significant bits, so n·LN2_HI is exact for |n| < 2^21.
const LN2_HI: f64 = 6.9314718036912381649e-1;
const LN2_LO: f64 = 1.9082149292705877e-10;
// Adding 1.5·2^52 rounds a double of magnitude < 2^51 to an integer held in the low mantissa bits.
const ROUND_SHIFT: f64 = 6755399441055744.0;
const ROUND_SHIFT_BITS: i64 = 0x4338000000000000;
// The input range that matters for e^x: above, the result is inf; below, it rounds to 0.
const EXP_HI: f64 = 710.0;
const EXP_LO: f64 = -746.0;
// 1/k! for k = 2 … 13.
const C2: f64 = 0.5;
const C3: f64 = 0.16666666666666666;
const C4: f64 = 0.041666666666666664;
const C5: f64 = 0.008333333333333333;
const C6: f64 = 0.001388888888888889;
const C7: f64 = 0.0001984126984126984;
const C8: f64 = 2.48015873015873e-5;
const C9: f64 = 2.7557319223985893e-6;
const C10: f64 = 2.755731922398589e-7;
const C11: f64 = 2.505210838544172e-8;
const C12: f64 = 2.08767569878681e-9;
const C13: f64 = 1.6059043836821613e-10;

/** e^r − 1 = r + r²·q(r) on |r| ≤ ln2/2 (q: Taylor coefficients from 1/2! on). */
// @ts-ignore: decorator
@inline
function expm1Reduced(r: v128): v128 {
  let q = madd<f64>(f64x2.splat(C13), r, f64x2.splat(C12));
  q = madd<f64>(q, r, f64x2.splat(C11));
  q = madd<f64>(q, r, f64x2.splat(C10));
  q = madd<f64>(q, r, f64x2.splat(C9));
  q = madd<f64>(q, r, f64x2.splat(C8));
  q = madd<f64>(q, r, f64x2.splat(C7));
  q = madd<f64>(q, r, f64x2.splat(C6));
  q = madd<f64>(q, r, f64x2.splat(C5));
  q = madd<f64>(q, r, f64x2.splat(C4));
  q = madd<f64>(q, r, f64x2.splat(C3));
  q = madd<f64>(q, r, f64x2.splat(C2));
  return madd<f64>(q, f64x2.mul(r, r), r);
}

/** t = x·log2(e) + 1.5·2^52: its low mantissa bits hold n = round(x/ln2). */
// @ts-ignore: decorator
@inline
function shifted(x: v128): v128 {
  return madd<f64>(x, f64x2.splat(LOG2E), f64x2.splat(ROUND_SHIFT));
}

/** r = x − n·ln2 in two steps (n·LN2_HI is exact). */
// @ts-ignore: decorator
@inline
function reduce(x: v128, n: v128): v128 {
  const r = madd<f64>(n, f64x2.splat(-LN2_HI), x);
  return madd<f64>(n, f64x2.splat(-LN2_LO), r);
}

/** 2^k for integers k in i64x2 lanes, k in [-1022, 1023]. */
// @ts-ignore: decorator
@inline
function pow2(k: v128): v128 {
  return i64x2.shl(i64x2.add(k, i64x2.splat(1023)), 52);
}

/**
 * e^x: e^r by the series, then · 2^n applied as two powers of two (2^(n>>1) and 2^(n−(n>>1)),
 * both normal for n in [-1077, 1025]) so that overflow and subnormal results come out right
 * without a branch. Max error: 1 ulp (measured 1.0, subnormal results included).
 */
// @ts-ignore: decorator
@inline
export function expv64(x: v128): v128 {
  // pmin/pmax keep NaN (they return their first operand when the compare is false).
  const xc = f64x2.pmax(f64x2.pmin(x, f64x2.splat(EXP_HI)), f64x2.splat(EXP_LO));
  const t = shifted(xc);
  const n = f64x2.sub(t, f64x2.splat(ROUND_SHIFT));
  const p = f64x2.add(expm1Reduced(reduce(xc, n)), f64x2.splat(1));
  const k = i64x2.sub(t, i64x2.splat(ROUND_SHIFT_BITS));
  const k1 = i64x2.shr_s(k, 1);
  return f64x2.mul(f64x2.mul(p, pow2(k1)), pow2(i64x2.sub(k, k1)));
}

const SIGN: i64 = 0x8000000000000000;
// Beyond this |x|, tanh x rounds to ±1 (1 − tanh 20 ≈ 8.5e-18 < 2^-54).
const TANH_CLAMP: f64 = 20.0;

/**
 * tanh x = sign(x)·m/(m + 2) with m = e^{2|x|} − 1 = 2^n·(e^r − 1) + (2^n − 1), which keeps
 * its relative accuracy as x → 0 (no 1 − … cancellation) and is exactly ±1 from |x| = 20 on.
 * Max error: 3 ulp (measured 1.72).
 */
// @ts-ignore: decorator
@inline
export function tanhv64(x: v128): v128 {
  const sign = v128.and(x, i64x2.splat(SIGN));
  const y = f64x2.pmin(v128.xor(x, sign), f64x2.splat(TANH_CLAMP));
  const ax2 = f64x2.add(y, y);
  const t = shifted(ax2);
  const n = f64x2.sub(t, f64x2.splat(ROUND_SHIFT));
  const s = pow2(i64x2.sub(t, i64x2.splat(ROUND_SHIFT_BITS)));
  const m = madd<f64>(s, expm1Reduced(reduce(ax2, n)), f64x2.sub(s, f64x2.splat(1)));
  return v128.or(f64x2.div(m, f64x2.add(m, f64x2.splat(2))), sign);
}

/** z = e^{-|x|}: σ(x) = s for x ≥ 0 and z·s for x < 0 with s = 1/(1 + z); σ(1 − σ) = z·s². */
// @ts-ignore: decorator
@inline
export function expNegAbs64(x: v128): v128 {
  return expv64(v128.or(x, i64x2.splat(SIGN)));
}

/** σ(x) = 1/(1 + e^{-x}), without overflow or cancellation. Max error: 3 ulp (measured 2.40). */
// @ts-ignore: decorator
@inline
export function sigmoidv64(x: v128): v128 {
  const z = expNegAbs64(x);
  const s = f64x2.div(f64x2.splat(1), f64x2.add(f64x2.splat(1), z));
  return v128.bitselect(f64x2.mul(z, s), s, f64x2.lt(x, f64x2.splat(0)));
}

// gelu's tanh form as x·σ(x·(GELU64_2K + GELU64_2KC·x²)), in f64: within 3·(1 + |u|) ulp
// (measured 1.75·(1 + |u|)), the rounding of u amplified where gelu → 0.
export const GELU64_2K: f64 = 1.5957691216057308; // 2√(2/π)
export const GELU64_2KC: f64 = 0.07135481627260025; // 2√(2/π)·0.044715
export const GELU64_6KC: f64 = 0.21406444881780073; // 3·2√(2/π)·0.044715
