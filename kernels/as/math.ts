// Vector approximations of exp, log, tanh and the logistic sigmoid on f32x4, inlined into the
// kernels that use them (unary.ts, activation.ts, activation_backward.ts, softmax.ts); not
// exported from index.ts: they are building blocks, not kernels.
//
// Polynomial coefficients: near-minimax fits of the relative error (Lawson's iteratively
// reweighted least squares on Chebyshev nodes), rounded to f32. The max errors stated below
// are against float64 Math.* (so they include the final rounding, ≥ 0.5 ulp), measured in
// both builds (simd, relaxed) over every 7th (exp) or 13th/61st f32 bit pattern;
// test/elementwise-math.test.ts holds every kernel to them.
//
// Edges: NaN in gives NaN out; exp(x > 88.72…) = inf, exp(-inf) = 0, subnormal results
// kept; log(±0) = -inf, log(x < 0) = NaN, log(inf) = inf, subnormal inputs handled;
// tanh and sigmoid saturate to ±1 / 0, 1 without overflow.

// a·b + c, fused in the relaxed build where the runtime fuses it.
// @ts-ignore: decorator
@inline
export function madd<T>(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.relaxed_madd<T>(a, b, c);
  return v128.add<T>(v128.mul<T>(a, b), c);
}

// c − a·b, fused likewise.
// @ts-ignore: decorator
@inline
export function nmadd<T>(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.relaxed_nmadd<T>(a, b, c);
  return v128.sub<T>(c, v128.mul<T>(a, b));
}

const LOG2E: f32 = 1.44269504;
// ln 2 split in two: LN2_HI has 11 significant bits, so n·LN2_HI is exact for |n| < 2^13.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// Adding 1.5·2^23 rounds a float of magnitude < 2^22 to an integer held in the low mantissa bits.
const ROUND_SHIFT: f32 = 12582912.0;
const ROUND_SHIFT_BITS: i32 = 0x4b400000;
// exp's input range that matters: above, the result is inf; below, it rounds to 0.
const EXP_HI: f32 = 89.0;
const EXP_LO: f32 = -104.0;
// e^r ≈ 1 + r + r²·(E2 + E3 r + E4 r² + E5 r³ + E6 r⁴) on |r| ≤ ln2/2: relative error 3.1e-9.
const E2: f32 = 0.49999994;
const E3: f32 = 0.16666521;
const E4: f32 = 0.04166839;
const E5: f32 = 0.00836871;
const E6: f32 = 0.0013814613;

/**
 * e^x: x = n·ln2 + r with |r| ≤ ln2/2, e^r by the polynomial above, then · 2^n applied as two
 * powers of two (2^(n>>1) and 2^(n-(n>>1)), both normal for n in [-150, 128]) so that results
 * that overflow or are subnormal come out right without a branch.
 * Max error: 1 ulp (measured 0.99), subnormal results included (in units of 2⁻¹⁴⁹ there).
 */
// @ts-ignore: decorator
@inline
export function expv(x: v128): v128 {
  // pmin/pmax keep NaN (they return their first operand when the compare is false).
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(EXP_HI)), f32x4.splat(EXP_LO));
  const t = madd<f32>(xc, f32x4.splat(LOG2E), f32x4.splat(ROUND_SHIFT));
  const n = f32x4.sub(t, f32x4.splat(ROUND_SHIFT));
  let r = madd<f32>(n, f32x4.splat(-LN2_HI), xc);
  r = madd<f32>(n, f32x4.splat(-LN2_LO), r);
  let q = madd<f32>(f32x4.splat(E6), r, f32x4.splat(E5));
  q = madd<f32>(q, r, f32x4.splat(E4));
  q = madd<f32>(q, r, f32x4.splat(E3));
  q = madd<f32>(q, r, f32x4.splat(E2));
  const p = f32x4.add(madd<f32>(q, f32x4.mul(r, r), r), f32x4.splat(1));
  const k = i32x4.sub(t, i32x4.splat(ROUND_SHIFT_BITS));
  const k1 = i32x4.shr_s(k, 1);
  const k2 = i32x4.sub(k, k1);
  const s1 = i32x4.shl(i32x4.add(k1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(k2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

// Bits of √½: subtracting them splits x into 2^e · m with m in [√½, √2).
const SQRT_HALF_BITS: i32 = 0x3f3504f3;
const FLT_MIN: f32 = 1.17549435e-38;
const TWO_POW_23: f32 = 8388608.0;
// log(1+f) ≈ f − f²/2 + f³·(L3 + L4 f + … + L10 f⁷) on f in [√½−1, √2−1]: relative error 5.8e-9.
const L3: f32 = 0.3333333;
const L4: f32 = -0.2500082;
const L5: f32 = 0.20001227;
const L6: f32 = -0.16623357;
const L7: f32 = 0.14201757;
const L8: f32 = -0.13160183;
const L9: f32 = 0.12761578;
const L10: f32 = -0.07634498;

/**
 * ln x: x = 2^e · m with m in [√½, √2) by integer arithmetic on the bits (subnormals first
 * scaled by 2^23), then e·ln2 + log(1+f) with f = m − 1 (exact).
 * Max error: 1 ulp (measured 0.93).
 */
// @ts-ignore: decorator
@inline
export function logv(x: v128): v128 {
  const tiny = f32x4.lt(x, f32x4.splat(FLT_MIN));
  const xs = v128.bitselect(f32x4.mul(x, f32x4.splat(TWO_POW_23)), x, tiny);
  const u = i32x4.sub(xs, i32x4.splat(SQRT_HALF_BITS));
  const e = i32x4.sub(i32x4.shr_s(u, 23), v128.and(tiny, i32x4.splat(23)));
  const m = i32x4.add(v128.and(u, i32x4.splat(0x007fffff)), i32x4.splat(SQRT_HALF_BITS));
  const f = f32x4.sub(m, f32x4.splat(1));
  let q = madd<f32>(f32x4.splat(L10), f, f32x4.splat(L9));
  q = madd<f32>(q, f, f32x4.splat(L8));
  q = madd<f32>(q, f, f32x4.splat(L7));
  q = madd<f32>(q, f, f32x4.splat(L6));
  q = madd<f32>(q, f, f32x4.splat(L5));
  q = madd<f32>(q, f, f32x4.splat(L4));
  q = madd<f32>(q, f, f32x4.splat(L3));
  q = madd<f32>(q, f, f32x4.splat(-0.5));
  const y = madd<f32>(q, f32x4.mul(f, f), f);
  const ef = f32x4.convert_i32x4_s(e);
  let r = madd<f32>(ef, f32x4.splat(LN2_HI), madd<f32>(ef, f32x4.splat(LN2_LO), y));
  // Outside (0, inf): NaN and inf give themselves, ±0 gives -inf, negatives give NaN.
  const regular = v128.and(f32x4.gt(x, f32x4.splat(0)), f32x4.lt(x, f32x4.splat(Infinity)));
  r = v128.bitselect(r, x, regular);
  r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x, f32x4.splat(0)));
  return v128.bitselect(f32x4.splat(NaN), r, f32x4.lt(x, f32x4.splat(0)));
}

const SIGN: i32 = 0x80000000;
// gelu's tanh form, as x·σ(x·(GELU_2K + GELU_2KC·x²)) (activation.ts).
export const GELU_2K: f32 = 1.5957691216; // 2√(2/π)
export const GELU_2KC: f32 = 0.0713548162726; // 2√(2/π)·0.044715
// Below this |x|, tanh is the odd polynomial; above, 1 − 2/(e^{2|x|} + 1).
const TANH_SMALL: f32 = 0.625;
// tanh x ≈ x + x³·(T1 + T2 x² + … + T5 x⁸) on [0, 0.625]: relative error 4.4e-9.
const T1: f32 = -0.3333328;
const T2: f32 = 0.13331442;
const T3: f32 = -0.053739715;
const T4: f32 = 0.020639086;
const T5: f32 = -0.005704987;

/**
 * tanh x: an odd polynomial for |x| < 0.625, else sign(x)·(1 − 2/(e^{2|x|} + 1)), which is
 * exactly ±1 once e^{2|x|} overflows. Max error: 1.5 ulp (measured 1.32, just above 0.625).
 */
// @ts-ignore: decorator
@inline
export function tanhv(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(SIGN));
  const ax = v128.xor(x, sign);
  const x2 = f32x4.mul(x, x);
  let q = madd<f32>(f32x4.splat(T5), x2, f32x4.splat(T4));
  q = madd<f32>(q, x2, f32x4.splat(T3));
  q = madd<f32>(q, x2, f32x4.splat(T2));
  q = madd<f32>(q, x2, f32x4.splat(T1));
  const small = madd<f32>(f32x4.mul(x, x2), q, x);
  const e = expv(f32x4.add(ax, ax));
  const one = f32x4.splat(1);
  const large = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one)));
  return v128.bitselect(small, v128.or(large, sign), f32x4.lt(ax, f32x4.splat(TANH_SMALL)));
}

/**
 * z = e^{-|x|}, the part every logistic formula here is built from: with s = 1/(1 + z),
 * σ(x) = s for x ≥ 0 and z·s for x < 0, and σ(x)(1 − σ(x)) = z·s². Nothing overflows, and
 * the tail x ≪ 0 keeps its relative accuracy (1 − σ would cancel).
 */
// @ts-ignore: decorator
@inline
export function expNegAbs(x: v128): v128 {
  return expv(v128.or(x, i32x4.splat(SIGN)));
}

/** σ(x) = 1/(1 + e^{-x}). Max error: 3 ulp (measured 2.71), subnormal results included. */
// @ts-ignore: decorator
@inline
export function sigmoidv(x: v128): v128 {
  const z = expNegAbs(x);
  const s = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), z));
  return v128.bitselect(f32x4.mul(z, s), s, f32x4.lt(x, f32x4.splat(0)));
}
