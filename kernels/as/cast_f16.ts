// f32 ↔ f16 (IEEE binary16) casts over raw bit patterns. Reference: test/vectors/f32_to_16.bin
// and test/vectors/f16_to_f32.bin, from numpy's astype (scripts/gen-cast-vectors.py).
//
// f32 → f16 rounds to nearest even, into subnormal halves and to ±inf past 65519.99…; a NaN
// becomes the quiet NaN with its sign and top payload bits, sign | 0x7e00 | (mantissa >>> 13)
// (what F16C does; numpy instead keeps signalling NaNs signalling). f16 → f32 is exact.
//
// The rounding is done by the FPU, as in Maratyszcza/FP16's fp16_ieee_from_fp32_value: adding
// |x|·4 to a power of two whose ulp is the half's ulp rounds |x| to the half's precision (normal
// or subnormal), and the half's exponent and mantissa are then read off the sum's bits.
// Here the ×4 is an exponent add and the overflow clamp an integer min: no float multiplies,
// so f32 subnormal inputs never reach the FPU (they would stall it on x86); the exponent add
// turns them into tiny normals instead of ×4, and both round to ±0.
import { f16_to_f32_bits, store_f16x8_as_f32 } from "./cast_f16_lanes";

// Elements per NaN check; a block that holds a NaN is converted again by the exact loop.
const BLOCK = 1024;

const K = memory.data<u32>(
  [
    0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // 0: magnitude mask
    0x47800000, 0x47800000, 0x47800000, 0x47800000, // 16: 65536.0, the clamp (rounds to inf like anything above 65520)
    0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 32: exponent mask; also +inf
    0x38800000, 0x38800000, 0x38800000, 0x38800000, // 48: 2⁻¹⁴, the smallest normal half: subnormals share its ulp
    0x07800000, 0x07800000, 0x07800000, 0x07800000, // 64: 15 << 23, puts the ulp of 2^(e+15) at the half's ulp of 4·2^e
    0x01000000, 0x01000000, 0x01000000, 0x01000000, // 80: 2 << 23, ×4 through the exponent
    0x00007fff, 0x00007fff, 0x00007fff, 0x00007fff, // 96: half magnitude
    0x00007e00, 0x00007e00, 0x00007e00, 0x00007e00, // 112: half quiet NaN
  ],
  16,
);
const SIGN16 = memory.data<u16>([0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000], 16);

// Scalar form of the same arithmetic, for tails.
@inline
function f16_bits(u: u32): u32 {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00 | ((a >>> 13) & 0x03ff);
  const c = min(a, 0x47800000);
  const bias = max(c & 0x7f800000, 0x38800000) + 0x07800000;
  const s = reinterpret<u32>(reinterpret<f32>(bias) + reinterpret<f32>(c + 0x01000000));
  return sign | (((s >>> 13) + s) & 0x7fff);
}

// From |x| bits to the half's magnitude bits in the low 15 bits of each lane (bits above are
// junk; NaN lanes are junk too). The sum's exponent is the half's exponent + 127 ≡ −1 (mod 32)
// and its mantissa holds 1024 + the half's mantissa, carry included, so
// (s >>> 13) + s = ((exponent − 1) << 10) + 1024 + mantissa in the low 15 bits.
// The constants K16..K80 come as arguments: the loop loads them into locals once (V8 keeps a
// v128.load in the loop, ~12% of this pass's time at the 784×256 weight).
@inline
function f16_mag(a: v128, k16: v128, k32: v128, k48: v128, k64: v128, k80: v128): v128 {
  const c = i32x4.min_s(a, k16);
  const bias = i32x4.add(i32x4.max_s(v128.and(c, k32), k48), k64);
  const s = f32x4.add(bias, i32x4.add(c, k80));
  return i32x4.add(i32x4.shr_u(s, 13), s);
}

// f16_mag with NaN lanes set to 0x7e00 | top payload, then cut to 15 bits.
@inline
function f16_mag_exact(a: v128): v128 {
  const nan = i32x4.gt_s(a, v128.load(K, 32));
  const mag = f16_mag(a, v128.load(K, 16), v128.load(K, 32), v128.load(K, 48), v128.load(K, 64), v128.load(K, 80));
  return v128.and(v128.bitselect(v128.or(i32x4.shr_u(a, 13), v128.load(K, 112)), mag, nan), v128.load(K, 96));
}

// Sign bits of eight f32: a signed saturating narrow maps every negative i32 into [−32768, −1]
// and every other into [0, 32767], so bit 15 of the result is the sign (sign16: SIGN16's lanes).
@inline
function signs(x: v128, y: v128, sign16: v128): v128 {
  return v128.and(i16x8.narrow_i32x4_s(x, y), sign16);
}

export function f32_to_f16(src: usize, dst: usize, n: i32): void {
  const body = n & ~7;
  const k0 = v128.load(K);
  const k16 = v128.load(K, 16);
  const k32 = v128.load(K, 32);
  const k48 = v128.load(K, 48);
  const k64 = v128.load(K, 64);
  const k80 = v128.load(K, 80);
  const k96 = v128.load(K, 96);
  const sign16 = v128.load(SIGN16);
  let i = 0;
  while (i < body) {
    const end = min(i + BLOCK, body);
    let top = i32x4.splat(0); // largest |x| bits seen: NaN iff > 0x7f800000
    for (let j = i; j < end; j += 8) {
      const x = v128.load(src + (<usize>j << 2));
      const y = v128.load(src + (<usize>j << 2), 16);
      const ax = v128.and(x, k0);
      const ay = v128.and(y, k0);
      top = i32x4.max_s(top, i32x4.max_s(ax, ay));
      const mx = v128.and(f16_mag(ax, k16, k32, k48, k64, k80), k96);
      const my = v128.and(f16_mag(ay, k16, k32, k48, k64, k80), k96);
      v128.store(dst + (<usize>j << 1), v128.or(i16x8.narrow_i32x4_u(mx, my), signs(x, y, sign16)));
    }
    if (v128.any_true(i32x4.gt_s(top, k32))) {
      for (let j = i; j < end; j += 8) {
        const x = v128.load(src + (<usize>j << 2));
        const y = v128.load(src + (<usize>j << 2), 16);
        const mx = f16_mag_exact(v128.and(x, v128.load(K)));
        const my = f16_mag_exact(v128.and(y, v128.load(K)));
        v128.store(dst + (<usize>j << 1), v128.or(i16x8.narrow_i32x4_u(mx, my), signs(x, y, sign16)));
      }
    }
    i = end;
  }
  for (; i < n; i++) store<u16>(dst + (<usize>i << 1), f16_bits(load<u32>(src + (<usize>i << 2))));
}

export function f16_to_f32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    store_f16x8_as_f32(v128.load(src + (<usize>i << 1)), dst + (<usize>i << 2), false, i32x4.splat(0));
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), f16_to_f32_bits(load<u16>(src + (<usize>i << 1))));
}
