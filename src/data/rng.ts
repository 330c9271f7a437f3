/**
 * PCG32 (O'Neill 2014, "pcg32_random_r" of pcg-c-basic: 64-bit LCG state, XSH-RR output),
 * written with 32-bit integer arithmetic only, so every runtime produces the same bits.
 * `normal()` uses Marsaglia's polar method with a logarithm built from +, −, ×, ÷ (all
 * correctly rounded in IEEE 754), so it is bit-identical across engines too, unlike
 * `Math.log`, whose last bit differs between V8 and JavaScriptCore.
 */

/** Everything an Rng needs to continue its sequence; plain JSON (save it in a checkpoint). */
export interface RngState {
  readonly algorithm: "pcg32";
  /** 64-bit LCG state and increment, 16 hex digits each. */
  readonly state: string;
  readonly inc: string;
  /** The second value of the last polar pair, not yet returned by `normal()`. */
  readonly spareNormal: number | null;
}

const MUL_HI = 0x5851f42d; // 6364136223846793005, the PCG/Knuth MMIX multiplier
const MUL_LO = 0x4c957f2d;
const TWO32 = 2 ** 32;

export class Rng {
  private sh = 0; // state, high and low 32 bits
  private sl = 0;
  private ih = 0; // increment (always odd)
  private il = 1;
  private spare: number | null = null;

  /**
   * A generator for `seed` on stream `stream` (both non-negative safe integers), seeded as
   * pcg32_srandom_r(seed, stream) is: different streams give unrelated sequences.
   */
  constructor(seed = 0, stream = 0) {
    const s = word64(seed, "Rng seed");
    const q = word64(stream, "Rng stream");
    this.seed(s[0], s[1], q[0], q[1]);
  }

  /** Restores a generator saved with `state()`; it continues exactly where that one stood. */
  static fromState(saved: RngState): Rng {
    const bad = (what: string) =>
      new TypeError(`plait: Rng.fromState: ${what}, got ${JSON.stringify(saved)?.slice(0, 200)}`);
    if (saved === null || typeof saved !== "object" || saved.algorithm !== "pcg32") {
      throw bad('expected an object with algorithm "pcg32"');
    }
    const st = parseHex64(saved.state);
    const inc = parseHex64(saved.inc);
    if (!st || !inc || (inc[1] & 1) === 0) throw bad("state and inc must be 16 hex digits, inc odd");
    const spare = saved.spareNormal;
    if (spare !== null && !Number.isFinite(spare)) throw bad("spareNormal must be a finite number or null");
    const r = new Rng();
    [r.sh, r.sl, r.ih, r.il, r.spare] = [st[0], st[1], inc[0], inc[1], spare];
    return r;
  }

  state(): RngState {
    return {
      algorithm: "pcg32",
      state: hex64(this.sh, this.sl),
      inc: hex64(this.ih, this.il),
      spareNormal: this.spare,
    };
  }

  /** A new generator on its own stream, seeded from this one (which advances by four draws). */
  fork(): Rng {
    const r = new Rng();
    r.seed(this.nextU32(), this.nextU32(), this.nextU32(), this.nextU32());
    return r;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const oh = this.sh;
    const ol = this.sl;
    this.advance();
    const xh = oh ^ (oh >>> 18); // x ^= x >> 18 on the 64-bit old state
    const xl = ol ^ ((ol >>> 18) | (oh << 14));
    const xs = ((xl >>> 27) | (xh << 5)) >>> 0; // (uint32)(x >> 27)
    const rot = oh >>> 27; // old state >> 59
    return ((xs >>> rot) | (xs << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 2 ** 26 + lo) * 2 ** -53;
  }

  /** Uniform integer in [0, n), without modulo bias; n an integer in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO32) {
      throw new RangeError(`plait: Rng.int(n): n must be an integer in [1, 2^32], got ${n}`);
    }
    const threshold = (TWO32 - n) % n; // reject the lowest 2^32 mod n values
    for (;;) {
      const r = this.nextU32();
      if (r >= threshold) return r % n;
    }
  }

  /** A uniformly random permutation of 0 … n−1 (Fisher–Yates, drawing int(i + 1) for i = n−1 … 1). */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1) {
      throw new RangeError(`plait: Rng.permutation(n): n must be an integer in [0, 2^31 - 1], got ${n}`);
    }
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return perm;
  }

  /** Standard normal sample (mean 0, variance 1). */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * portableLog(s)) / s);
    this.spare = v * f;
    return u * f;
  }

  /** pcg32_srandom_r with 64-bit initstate (sh, sl) and initseq (qh, ql). */
  private seed(sh: number, sl: number, qh: number, ql: number): void {
    this.ih = ((qh << 1) | (ql >>> 31)) >>> 0;
    this.il = ((ql << 1) | 1) >>> 0;
    this.sh = 0;
    this.sl = 0;
    this.spare = null;
    this.advance();
    const lo = this.sl + (sl >>> 0);
    this.sl = lo >>> 0;
    this.sh = (this.sh + (sh >>> 0) + (lo >= TWO32 ? 1 : 0)) >>> 0;
    this.advance();
  }

  /** state = state × MUL + inc (mod 2^64). */
  private advance(): void {
    const sh = this.sh;
    const sl = this.sl;
    const ph = mulHi32(sl, MUL_LO) + Math.imul(sh, MUL_LO) + Math.imul(sl, MUL_HI); // exact sum, reduced below
    const lo = (Math.imul(sl, MUL_LO) >>> 0) + this.il;
    this.sl = lo >>> 0;
    this.sh = (ph + this.ih + (lo >= TWO32 ? 1 : 0)) >>> 0;
  }
}

/** High 32 bits of the 64-bit product of two u32s, from 16-bit halves (each partial sum < 2^32). */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid = a1 * b0 + ((a0 * b0) >>> 16);
  const mid2 = a0 * b1 + (mid & 0xffff);
  return a1 * b1 + (mid >>> 16) + (mid2 >>> 16);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer); // little-endian: u32[1] holds sign and exponent
const LN2_HI = 0.6931471803691238; // ln 2 split so that e × LN2_HI is exact
const LN2_LO = 1.9082149292705877e-10;

/**
 * ln(x) for a positive normal x, within a few ulp, from basic arithmetic only: x = m·2^e with
 * m in [√½, √2), ln m = 2·atanh(s) with s = (m − 1)/(m + 1), |s| ≤ 0.172, summed to 2^-56.
 */
export function portableLog(x: number): number {
  f64[0] = x;
  let e = ((u32[1] >>> 20) & 0x7ff) - 1023;
  u32[1] = (u32[1] & 0x000fffff) | 0x3ff00000; // m in [1, 2)
  let m = f64[0];
  if (m > Math.SQRT2) {
    m /= 2;
    e++;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  let p = 1 / 23;
  for (let k = 21; k >= 3; k -= 2) p = p * z + 1 / k;
  return e * LN2_HI + (f - f * s + 2 * s * z * p + e * LN2_LO); // f − f·s = 2s, with less rounding
}

function word64(n: number, what: string): [number, number] {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`plait: ${what} must be a non-negative safe integer, got ${n}`);
  }
  return [Math.floor(n / TWO32), n >>> 0];
}

const hex64 = (h: number, l: number) => h.toString(16).padStart(8, "0") + l.toString(16).padStart(8, "0");

function parseHex64(s: unknown): [number, number] | undefined {
  if (typeof s !== "string" || !/^[0-9a-f]{16}$/.test(s)) return undefined;
  return [Number.parseInt(s.slice(0, 8), 16), Number.parseInt(s.slice(8), 16)];
}
