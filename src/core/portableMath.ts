// Math from basic arithmetic only, for deterministic mode (configure({ deterministic: true })).
// Math.exp, Math.log, Math.cos and ** are implementation-defined in JavaScript: V8 (Node, Deno)
// runs ports of fdlibm, JavaScriptCore (Bun) the C library's, and the last bit differs for some
// arguments. +, −, ×, ÷ and sqrt are correctly rounded everywhere and JS never fuses them, so
// these functions give the same bits on every runtime. Accuracy: about 1 ulp (exp, log), a few
// ulp (log1p, cosPi, powInt); test/deterministic.test.ts measures them against Math.*.

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** Index of the high word (sign, exponent) in u32: 1 on little-endian machines. */
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LO = 1 - HI;

const LN2_HI = 0.6931471803691238; // ln 2 with its low 21 bits zero: k × LN2_HI is exact for |k| < 2^21
const LN2_LO = 1.9082149292705877e-10; // ln 2 − LN2_HI
const INV_LN2 = Math.LOG2E;

/** 2^k for an integer k in [−1022, 1023], built from its bits. */
function pow2(k: number): number {
  u32[HI] = (k + 1023) << 20;
  u32[LO] = 0;
  return f64[0];
}

/** 1/k! for k = 0..19 (k! exact up to 18!, then one rounding; the same bits everywhere). */
const INV_FACT: number[] = [];
for (let k = 0, f = 1; k <= 19; k++, f *= k) INV_FACT.push(1 / f);

/** e^x within about 1 ulp: x = k·ln2 + r, |r| ≤ ln2/2, Taylor to r^13, then × 2^k in two exact steps. */
export function exp(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x > 709.782712893384) return Number.POSITIVE_INFINITY;
  if (x < -745.1332191019412) return 0;
  const k = Math.floor(x * INV_LN2 + 0.5);
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = INV_FACT[13];
  for (let i = 12; i >= 2; i--) p = p * r + INV_FACT[i];
  const y = 1 + (r + r * r * p); // e^r − 1 summed first, then the 1
  const k1 = k >> 1;
  return y * pow2(k1) * pow2(k - k1);
}

/**
 * ln x within about 1 ulp: x = m·2^e with m in [√½, √2), f = m − 1, s = f/(2 + f), and
 * ln(1 + f) = f − (f²/2 − s·(f²/2 + R)) with R = Σ 2·s^2k/(2k + 1), summed to 2^-56.
 */
export function log(x: number): number {
  if (Number.isNaN(x) || x < 0) return Number.NaN;
  if (x === 0) return Number.NEGATIVE_INFINITY;
  if (x === Number.POSITIVE_INFINITY) return x;
  let e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984; // subnormal: × 2^54 into the normal range (exact)
    e = -54;
  }
  f64[0] = x;
  e += ((u32[HI] >>> 20) & 0x7ff) - 1023;
  u32[HI] = (u32[HI] & 0x000fffff) | 0x3ff00000; // m in [1, 2)
  let m = f64[0];
  if (m > Math.SQRT2) {
    m /= 2;
    e++;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  let r = 2 / 23;
  for (let k = 21; k >= 3; k -= 2) r = r * z + 2 / k;
  r *= z;
  const hfsq = 0.5 * f * f;
  return e * LN2_HI + (f - (hfsq - (s * (hfsq + r) + e * LN2_LO)));
}

/**
 * ln(1 + x) for x ≥ −1, accurate for small x: u = 1 + x rounded, then ln(u)·x/(u − 1), which
 * cancels the rounding of u (Goldberg, "What every computer scientist should know about
 * floating-point arithmetic", theorem 4); within a few ulp.
 */
export function log1p(x: number): number {
  const u = 1 + x;
  if (u === 1) return x; // |x| < 2^-53: ln(1 + x) = x to the last bit (also keeps −0)
  if (u === Number.POSITIVE_INFINITY) return log(x); // x is huge: ln(1 + x) = ln(x)
  return (log(u) * x) / (u - 1);
}

/** cos(r) for |r| ≤ π/4, Taylor to r^18. */
function cosSmall(r: number): number {
  const z = r * r;
  let p = INV_FACT[18];
  for (let i = 16; i >= 2; i -= 2) p = p * -z + INV_FACT[i];
  return 1 - z * p;
}

/** sin(r) for |r| ≤ π/4, Taylor to r^19. */
function sinSmall(r: number): number {
  const z = r * r;
  let p = INV_FACT[19];
  for (let i = 17; i >= 3; i -= 2) p = p * -z + INV_FACT[i];
  return r - r * z * p;
}

/** cos(π·t) for t in [0, 1] (a cosine schedule's half period), within a few ulp. */
export function cosPi(t: number): number {
  if (!(t >= 0 && t <= 1)) throw new RangeError(`plait: cosPi: argument t must be in [0, 1], got ${t}`);
  if (t <= 0.25) return cosSmall(Math.PI * t);
  if (t <= 0.75) return sinSmall(Math.PI * (0.5 - t)); // 0.5 − t and 1 − t are exact here
  return -cosSmall(Math.PI * (1 - t));
}

/**
 * b^n for an integer n ≥ 0 (Adam's β^t), as e^(n·ln|b|) with the sign of b^n: relative error
 * about (1 + |n·ln b|) ulp, so a few ulp while β^t is far from underflow.
 */
export function powInt(b: number, n: number): number {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`plait: powInt: argument n must be a non-negative integer, got ${n}`);
  }
  if (n === 0) return 1;
  if (Number.isNaN(b)) return b;
  const magnitude = b === 0 ? 0 : exp(n * log(Math.abs(b)));
  return b < 0 && n % 2 === 1 ? -magnitude : magnitude;
}
