// Loads of GEMM source elements as f32: f32 as is, bf16 by a 16-bit shift (exact), f16 by the
// IEEE half → float conversion of Maratyszcza's FP16 library (normals by an exponent rebias and
// a multiply by 2^-112, subnormals by the "magic 0.5" subtraction; inf and NaN kept).
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

static inline float f16_to_f32(uint16_t h) {
  const uint32_t w = (uint32_t)h << 16, two_w = w + w;
  const float normal = bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1p-112f;
  const float subnormal = bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  uint32_t bits;
  const float mag = two_w < (1u << 27) ? subnormal : normal;
  memcpy(&bits, &mag, 4);
  return bits_f32((w & 0x80000000u) | bits);
}

// Four halves, zero-extended into the u32 lanes of h, as four floats.
static inline v128_t f16x4_to_f32x4(v128_t h) {
  const v128_t w = wasm_i32x4_shl(h, 16), two_w = wasm_i32x4_add(w, w);
  const v128_t normal = wasm_f32x4_mul(wasm_i32x4_add(wasm_u32x4_shr(two_w, 4), wasm_i32x4_splat(0xE0 << 23)),
                                       wasm_f32x4_splat(0x1p-112f));
  const v128_t subnormal =
      wasm_f32x4_sub(wasm_v128_or(wasm_u32x4_shr(two_w, 17), wasm_i32x4_splat(126 << 23)), wasm_f32x4_splat(0.5f));
  const v128_t is_sub = wasm_u32x4_lt(two_w, wasm_i32x4_splat(1 << 27));
  return wasm_v128_or(wasm_v128_and(w, wasm_i32x4_splat((int)0x80000000u)),
                      wasm_v128_bitselect(subnormal, normal, is_sub));
}

// Element i of a source of type dt, as f32.
static inline float load1_f32(int dt, const uint8_t* p, size_t i) {
  if (dt == GEMM_IN_F32) return ((const float*)p)[i];
  const uint16_t h = ((const uint16_t*)p)[i];
  return dt == GEMM_IN_BF16 ? bits_f32((uint32_t)h << 16) : f16_to_f32(h);
}

// Elements i..i+3 (contiguous) of a source of type dt, as f32x4.
static inline v128_t load4_f32(int dt, const uint8_t* p, size_t i) {
  if (dt == GEMM_IN_F32) return wasm_v128_load((const float*)p + i);
  const v128_t h = wasm_u32x4_load16x4((const uint16_t*)p + i);
  return dt == GEMM_IN_BF16 ? wasm_i32x4_shl(h, 16) : f16x4_to_f32x4(h);
}
