// Test data and float64 reference helpers shared by the elementwise, reduction and softmax tests.

/** Sizes that hit every SIMD tail (n mod 4, n mod 16) and, last, the threaded split. */
export const SIZES = [0, 1, 3, 4, 5, 17, 1023, 300_001];

/** f32 unit roundoff. */
export const U32 = 2 ** -24;
/** f64 unit roundoff. */
export const U64 = 2 ** -53;
export const MIN_SUBNORMAL = 2 ** -149;

/** NaN, infinities, signed zeros, subnormals, the f32 extremes and a few ordinary values. */
export const EDGES = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  MIN_SUBNORMAL,
  -MIN_SUBNORMAL,
  1e-40,
  -3e-39,
  2 ** -126,
  3.4028234663852886e38,
  -3.4028234663852886e38,
  1,
  -1,
  0.5,
  1e10,
  -1e10,
].map(Math.fround);

/** Deterministic PRNG (mulberry32) in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DataOptions {
  /** values are ±2^e·(1..2) with e uniform in [-range, range] (default 8) */
  range?: number;
  /** fraction of elements replaced by EDGES values (default 0) */
  edges?: number;
  /** only values ≥ 0 */
  positive?: boolean;
}

/** n random f32 values spread over magnitudes, optionally with edge values sprinkled in. */
export function randomF32(n: number, seed: number, opts: DataOptions = {}): Float32Array {
  const { range = 8, edges = 0, positive = false } = opts;
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (r() < edges) out[i] = EDGES[Math.floor(r() * EDGES.length)];
    else {
      const sign = positive || r() < 0.5 ? 1 : -1;
      out[i] = sign * (1 + r()) * 2 ** Math.round((2 * r() - 1) * range);
    }
  }
  return out;
}

/** Spacing of f32 values at |r| (2^-149 in the subnormal range). */
export function ulpF32(r: number): number {
  const a = Math.abs(r);
  if (a < 2 ** -126) return MIN_SUBNORMAL;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 rounding just below a power of two
  return 2 ** (e - 23);
}

/**
 * Checks got[i] against ref(i) for every i: NaN where the reference is NaN (and only there),
 * equal infinities (for f32 output, a reference beyond the f32 range must come out as inf),
 * otherwise |got − ref| ≤ tol(i, ref). Fails with the first bad index.
 */
export function checkAll(
  what: string,
  got: ArrayLike<number>,
  ref: (i: number) => number,
  tol: (i: number, r: number) => number,
  input?: (i: number) => string,
): void {
  const inRange = got instanceof Float32Array ? Math.fround : (r: number) => r;
  for (let i = 0; i < got.length; i++) {
    const exact = ref(i);
    const r = Number.isFinite(inRange(exact)) ? exact : inRange(exact);
    const g = got[i];
    const ok = Number.isNaN(r)
      ? Number.isNaN(g)
      : !Number.isFinite(r) || !Number.isFinite(g)
        ? g === r
        : Math.abs(g - r) <= tol(i, r);
    if (!ok) {
      const at = input ? ` for ${input(i)}` : "";
      throw new Error(`${what}: element ${i}${at}: got ${g}, expected ${r} (tolerance ${tol(i, r)})`);
    }
  }
}

/** Σ values within an ulp of the exact sum (Shewchuk's exact partials, as Python's math.fsum). */
export function fsum(values: Iterable<number>): number {
  const partials: number[] = [];
  let special = 0;
  for (let x of values) {
    if (!Number.isFinite(x)) {
      special += x;
      continue;
    }
    let k = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[k++] = lo;
      x = hi;
    }
    partials.length = k;
    partials.push(x);
  }
  if (special !== 0 || Number.isNaN(special)) return special;
  let total = 0;
  for (let i = partials.length - 1; i >= 0; i--) total += partials[i];
  return total;
}
