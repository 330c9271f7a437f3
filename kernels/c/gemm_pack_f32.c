// Packing for the f32 GEMM (gemm.h): copies `count` rows of A (or columns of B) by `depth` into
// panels of W interleaved lanes, dst[q / W][p][q % W] = src(q, p), widening bf16/f16 to f32 and
// padding the last panel with zeros. Two SIMD paths: the depth-contiguous layout transposes
// 4×4 blocks, the count-contiguous layout copies W lanes per step; any other stride goes
// element by element. Reference: the float64 GEMM loop in test/gemm.test.ts (all layouts).
#include "gemm.h"
#include "gemm_f32.h"
#include "gemm_widen.h"

static inline void transpose4(v128_t* r0, v128_t* r1, v128_t* r2, v128_t* r3) {
  const v128_t t0 = wasm_i32x4_shuffle(*r0, *r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*r2, *r3, 0, 4, 1, 5);
  const v128_t t2 = wasm_i32x4_shuffle(*r0, *r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(*r2, *r3, 2, 6, 3, 7);
  *r0 = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
  *r1 = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
  *r2 = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
  *r3 = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
}

// One full panel of W (a multiple of 4) rows q0.. whose elements are contiguous along depth.
static inline __attribute__((always_inline)) void pack_rows_contiguous(int W, int dt, int depth, const uint8_t* src,
                                                                       int rs, float* dst) {
  int p = 0;
  for (; p + 4 <= depth; p += 4) {
    for (int q = 0; q < W; q += 4) {
      v128_t r0 = load4_f32(dt, src, (size_t)(q + 0) * rs + p), r1 = load4_f32(dt, src, (size_t)(q + 1) * rs + p);
      v128_t r2 = load4_f32(dt, src, (size_t)(q + 2) * rs + p), r3 = load4_f32(dt, src, (size_t)(q + 3) * rs + p);
      transpose4(&r0, &r1, &r2, &r3);
      wasm_v128_store(dst + (p + 0) * W + q, r0);
      wasm_v128_store(dst + (p + 1) * W + q, r1);
      wasm_v128_store(dst + (p + 2) * W + q, r2);
      wasm_v128_store(dst + (p + 3) * W + q, r3);
    }
  }
  for (; p < depth; p++) {
    for (int q = 0; q < W; q++) dst[p * W + q] = load1_f32(dt, src, (size_t)q * rs + p);
  }
}

// One full panel of W lanes that are contiguous in memory (stride 1 along count).
static inline __attribute__((always_inline)) void pack_lanes_contiguous(int W, int dt, int depth, const uint8_t* src,
                                                                        int cs, float* dst) {
  for (int p = 0; p < depth; p++) {
    for (int q = 0; q < W; q += 4) wasm_v128_store(dst + p * W + q, load4_f32(dt, src, (size_t)p * cs + q));
  }
}

// A panel with `lanes` < W real lanes (or arbitrary strides): element by element, zero padded.
static void pack_any(int W, int dt, int lanes, int depth, const uint8_t* src, int rs, int cs, float* dst) {
  for (int p = 0; p < depth; p++) {
    for (int q = 0; q < W; q++) dst[p * W + q] = q < lanes ? load1_f32(dt, src, (size_t)q * rs + (size_t)p * cs) : 0.0f;
  }
}

static inline __attribute__((always_inline)) void pack(int W, int dt, int count, int depth, const uint8_t* src,
                                                       int rs, int cs, void* dst) {
  const int elem = dt == GEMM_IN_F32 ? 4 : 2;
  float* out = (float*)dst;
  for (int q = 0; q < count; q += W, out += W * depth) {
    const uint8_t* s = src + (size_t)q * rs * elem;
    const int lanes = count - q < W ? count - q : W;
    if (lanes == W && cs == 1 && W % 4 == 0) pack_rows_contiguous(W, dt, depth, s, rs, out);
    else if (lanes == W && rs == 1) pack_lanes_contiguous(W, dt, depth, s, cs, out);
    else pack_any(W, dt, lanes, depth, s, rs, cs, out);
  }
}

#define PACK_FN(name, W, dt)                                                                     \
  void name(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) {               \
    pack(W, dt, count, depth, src, rs, cs, dst);                                                 \
  }
PACK_FN(gemm_pack_a_f32, GEMM_F32_MR, GEMM_IN_F32)
PACK_FN(gemm_pack_b_f32, GEMM_F32_NR, GEMM_IN_F32)
PACK_FN(gemm_pack_a_bf16, GEMM_F32_MR, GEMM_IN_BF16)
PACK_FN(gemm_pack_b_bf16, GEMM_F32_NR, GEMM_IN_BF16)
PACK_FN(gemm_pack_a_f16, GEMM_F32_MR, GEMM_IN_F16)
PACK_FN(gemm_pack_b_f16, GEMM_F32_NR, GEMM_IN_F16)
