// Loads of GEMM source elements as f32: f32 as is, bf16 by a 16-bit shift (exact), f16 by an
// exact integer-and-multiply widening (WASM has no F16C). The vector paths take 8 halves per
// step: the sign, the magnitude and an inf/NaN mask are worked out once for all 8 in 16-bit
// lanes, then each half of the vector is interleaved with zeros into 32-bit lanes (h << 16).
// The magnitude shifted into an f32's exponent and mantissa fields, (h & 0x7fff) << 13, is the
// half's value times 2^-112 — normals and subnormals alike, the latter as f32 subnormals — so
// one multiply by 2^112 rescales it exactly; halves with the all-ones exponent (inf, NaN) then
// get the f32 all-ones exponent ORed in (mantissa, so NaN payloads, kept), and the sign last.
// About 15 SIMD operations per 8 halves, against ~12 per 4 for the rebias-and-select widening
// it replaced. Reference: test/gemm.test.ts widens all 65,536 patterns against tensor.ts.
#pragma once
#include <stdint.h>
#include <string.h>
#include <wasm_simd128.h>

enum { GEMM_IN_F32 = 0, GEMM_IN_BF16 = 1, GEMM_IN_F16 = 2 };

static inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// The scalar tail's widening, the same steps one half at a time.
static inline float f16_to_f32(uint16_t h) {
  const uint32_t mag = h & 0x7fffu;
  float f = bits_f32(mag << 13) * 0x1p112f;
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if (mag > 0x7bffu) bits |= 0x7f800000u;
  return bits_f32(bits | ((uint32_t)(h & 0x8000u) << 16));
}

// 16-bit lanes of h, interleaved with zeros: lanes 0..3 (lo) or 4..7 (hi) as u32 lanes h << 16.
#define GEMM_HI16_LO(h) wasm_i16x8_shuffle(wasm_i32x4_splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11)
#define GEMM_HI16_HI(h) wasm_i16x8_shuffle(wasm_i32x4_splat(0), h, 4, 12, 5, 13, 6, 14, 7, 15)

// Eight halves → two f32x4 (halves 0..3 in *lo, 4..7 in *hi).
static inline __attribute__((always_inline)) void f16x8_to_f32(v128_t h, v128_t* lo, v128_t* hi) {
  const v128_t mag = wasm_v128_and(h, wasm_i16x8_splat(0x7fff));
  const v128_t special = wasm_i16x8_gt(mag, wasm_i16x8_splat(0x7bff));  // exponent 31: inf or NaN
  const v128_t top = wasm_v128_or(wasm_v128_and(h, wasm_i16x8_splat((int16_t)0x8000)),
                                  wasm_v128_and(special, wasm_i16x8_splat(0x7f80)));
  const v128_t scale = wasm_f32x4_splat(0x1p112f);
  *lo = wasm_v128_or(wasm_f32x4_mul(wasm_u32x4_shr(GEMM_HI16_LO(mag), 3), scale), GEMM_HI16_LO(top));
  *hi = wasm_v128_or(wasm_f32x4_mul(wasm_u32x4_shr(GEMM_HI16_HI(mag), 3), scale), GEMM_HI16_HI(top));
}

// Element i of a source of type dt, as f32.
static inline float load1_f32(int dt, const uint8_t* p, size_t i) {
  if (dt == GEMM_IN_F32) return ((const float*)p)[i];
  const uint16_t h = ((const uint16_t*)p)[i];
  return dt == GEMM_IN_BF16 ? bits_f32((uint32_t)h << 16) : f16_to_f32(h);
}

// Elements i..i+7 (contiguous) of a source of type dt, as two f32x4.
static inline __attribute__((always_inline)) void load8_f32(int dt, const uint8_t* p, size_t i, v128_t* lo,
                                                            v128_t* hi) {
  if (dt == GEMM_IN_F32) {
    *lo = wasm_v128_load((const float*)p + i);
    *hi = wasm_v128_load((const float*)p + i + 4);
    return;
  }
  const v128_t h = wasm_v128_load((const uint16_t*)p + i);
  if (dt == GEMM_IN_BF16) {
    *lo = GEMM_HI16_LO(h);
    *hi = GEMM_HI16_HI(h);
  } else {
    f16x8_to_f32(h, lo, hi);
  }
}

// Elements i..i+3 (contiguous) of a source of type dt, as f32x4 (the 8-wide widening on a
// 64-bit load; its upper half is discarded).
static inline __attribute__((always_inline)) v128_t load4_f32(int dt, const uint8_t* p, size_t i) {
  if (dt == GEMM_IN_F32) return wasm_v128_load((const float*)p + i);
  const v128_t h = wasm_v128_load64_zero((const uint16_t*)p + i);
  if (dt == GEMM_IN_BF16) return GEMM_HI16_LO(h);
  v128_t lo, hi;
  f16x8_to_f32(h, &lo, &hi);
  return lo;
}
