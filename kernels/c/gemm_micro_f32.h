// What every f32 microkernel shares: the multiply-add (plain build: mul then add, two
// roundings; relaxed build: f32x4.relaxed_madd, which V8 fuses on x86 with FMA and on ARM) and
// the tile store. A microkernel body is a template (gemm_micro_f32_*.inc) included once per
// tile shape with MR, NR and NAME defined; MR·NR/4 accumulators plus NR/4 B vectors and one A
// broadcast must fit the engine's vector registers (V8: 15 on x64 — 16 less its scratch —, 
// and about 30 on arm64), or the loop spills.
#pragma once
#include <wasm_simd128.h>

#include "gemm_f32.h"

#ifdef PLAIT_RELAXED
#define GEMM_MADD(a, b, c) __builtin_wasm_fma_f32x4(a, b, c)  // a*b + c once the build patches the opcode
#else
#define GEMM_MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#endif

// The end of a microkernel: acc[MR][NR / 4] into C. A full tile goes straight from registers;
// an edge tile (mr < MR or nr < NR, computed in full from the zero-padded panels) is spilled
// and stored element by element (gemm_store_edge_f32), with the same additions.
#define GEMM_MICRO_STORE(MR, NR)                                                           \
  do {                                                                                     \
    float* c_ = (float*)cp;                                                                \
    const float* bias_ = (const float*)biasp;                                              \
    if (mr == (MR) && nr == (NR)) {                                                        \
      v128_t bv_[(NR) / 4];                                                                \
      for (int j = 0; j < (NR) / 4; j++)                                                   \
        bv_[j] = bias_ ? wasm_v128_load(bias_ + 4 * j) : wasm_f32x4_splat(0.0f);           \
      for (int i = 0; i < (MR); i++) {                                                     \
        float* ci = c_ + i * ldc;                                                          \
        for (int j = 0; j < (NR) / 4; j++) {                                               \
          v128_t v = wasm_f32x4_add(acc[i][j], bv_[j]);                                    \
          if (load_c) v = wasm_f32x4_add(v, wasm_v128_load(ci + 4 * j));                   \
          wasm_v128_store(ci + 4 * j, v);                                                  \
        }                                                                                  \
      }                                                                                    \
    } else {                                                                               \
      float tile_[(MR) * (NR)];                                                            \
      for (int i = 0; i < (MR); i++)                                                       \
        for (int j = 0; j < (NR) / 4; j++) wasm_v128_store(tile_ + i * (NR) + 4 * j, acc[i][j]); \
      gemm_store_edge_f32(tile_, (NR), c_, ldc, mr, nr, bias_, load_c);                     \
    }                                                                                      \
  } while (0)
