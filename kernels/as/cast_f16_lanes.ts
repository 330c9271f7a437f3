// f16 → f32 widening of eight lanes, shared by cast_f16.ts and unscale.ts. Not exported from
// index.ts: every function here is inlined at compile time (V8 does not inline small WASM
// functions). Reference: test/vectors/f16_to_f32.bin (numpy, all 65,536 patterns).
//
// Exact for every pattern, signalling NaNs included, so no float arithmetic ever sees a NaN:
// normal numbers, ±inf and NaN are rebuilt with integer ops in the 16-bit domain (half the
// lanes of working in f32), and subnormals come from one exact float subtraction,
// (0.5 + m·2⁻²⁴) − 0.5 = m·2⁻²⁴, on lanes that are +0 everywhere else.

const K = memory.data<u16>(
  [
    0x7fff, 0x7fff, 0x7fff, 0x7fff, 0x7fff, 0x7fff, 0x7fff, 0x7fff, // 0: magnitude mask
    0x03ff, 0x03ff, 0x03ff, 0x03ff, 0x03ff, 0x03ff, 0x03ff, 0x03ff, // 16: largest subnormal
    0x7bff, 0x7bff, 0x7bff, 0x7bff, 0x7bff, 0x7bff, 0x7bff, 0x7bff, // 32: largest finite
    0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, // 48: sign
    0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, 0x8fff, // 64: sign + 12 bits after >> 3
    0xc800, 0xc800, 0xc800, 0xc800, 0xc800, 0xc800, 0xc800, 0xc800, // 80: −(127 − 15) << 7, exponent rebias
    0x3f00, 0x3f00, 0x3f00, 0x3f00, 0x3f00, 0x3f00, 0x3f00, 0x3f00, // 96: upper half of 0.5f
    0x0000, 0x3f00, 0x0000, 0x3f00, 0x0000, 0x3f00, 0x0000, 0x3f00, // 112: 0.5f
  ],
  16,
);

/** Scalar f16 → f32 bits, for tails. */
@inline
export function f16_to_f32_bits(h: u32): u32 {
  const sign = (h & 0x8000) << 16;
  const m = h & 0x7fff;
  if (m < 0x0400) return sign | reinterpret<u32>(<f32>m * 5.9604644775390625e-8); // m · 2⁻²⁴, exact
  if (m >= 0x7c00) return sign | 0x7f800000 | ((m & 0x03ff) << 13);
  return sign | ((m << 13) + 0x38000000);
}

/**
 * Widens the eight halves of `h` to f32 and stores them at dst (32 bytes); multiplies them by
 * `inv` first when `scaled` (a compile-time constant at every call site).
 */
@inline
export function store_f16x8_as_f32(h: v128, dst: usize, scaled: bool, inv: v128): void {
  const mag = v128.and(h, v128.load(K));
  const normal = i16x8.gt_s(mag, v128.load(K, 16)); // normal, inf or NaN
  const infnan = i16x8.gt_s(mag, v128.load(K, 32));
  const kept = v128.and(h, v128.or(normal, v128.load(K, 48))); // subnormal lanes keep the sign only
  // upper halves: sign | exponent + 112 (+ 112 more for inf/NaN, to reach 255) | top 7 mantissa
  // bits. normal + infnan is 0, −1 or −2, so one multiply gives the rebias 0, 112 or 224.
  const rebias = i16x8.mul(i16x8.add(normal, infnan), v128.load(K, 80));
  const hi = i16x8.add(v128.and(i16x8.shr_s(kept, 3), v128.load(K, 64)), rebias);
  const lo = i16x8.shl(kept, 13); // lower halves: the last 3 mantissa bits
  const sub = v128.andnot(mag, normal); // subnormal mantissa, 0 on other lanes
  const upper = v128.load(K, 96); // 0x3f00, so that (upper, m) is 0.5 + m · 2⁻²⁴
  const point5 = v128.load(K, 112);
  let a = v128.or(
    i8x16.shuffle(lo, hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
    f32x4.sub(i8x16.shuffle(sub, upper, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), point5),
  );
  let b = v128.or(
    i8x16.shuffle(lo, hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31),
    f32x4.sub(i8x16.shuffle(sub, upper, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), point5),
  );
  if (scaled) {
    a = f32x4.mul(a, inv);
    b = f32x4.mul(b, inv);
  }
  v128.store(dst, a);
  v128.store(dst, b, 16);
}

/** All-ones in the lanes of `h` that hold ±inf or NaN. */
@inline
export function f16x8_nonfinite(h: v128): v128 {
  return i16x8.gt_s(v128.and(h, v128.load(K)), v128.load(K, 32));
}
