// Packing for the f64 GEMM (gemm.h): `count` rows of A (or columns of B) by `depth` into panels
// of W interleaved lanes, dst[q / W][p][q % W] = src(q, p), the last panel zero padded. The
// depth-contiguous layout transposes 2×2 blocks, the count-contiguous layout copies W lanes per
// step; other strides go element by element. Reference: test/gemm.test.ts (all layouts).
#include <wasm_simd128.h>

#include "gemm.h"
#include "gemm_f64.h"

// One full panel of W (even) rows whose elements are contiguous along depth.
static inline __attribute__((always_inline)) void pack_rows_contiguous(int W, int depth, const double* src, int rs,
                                                                       double* dst) {
  int p = 0;
  for (; p + 2 <= depth; p += 2) {
    for (int q = 0; q < W; q += 2) {
      const v128_t r0 = wasm_v128_load(src + (size_t)q * rs + p), r1 = wasm_v128_load(src + (size_t)(q + 1) * rs + p);
      wasm_v128_store(dst + p * W + q, wasm_i64x2_shuffle(r0, r1, 0, 2));
      wasm_v128_store(dst + (p + 1) * W + q, wasm_i64x2_shuffle(r0, r1, 1, 3));
    }
  }
  for (; p < depth; p++) {
    for (int q = 0; q < W; q++) dst[p * W + q] = src[(size_t)q * rs + p];
  }
}

// One full panel of W (even) lanes that are contiguous in memory.
static inline __attribute__((always_inline)) void pack_lanes_contiguous(int W, int depth, const double* src, int cs,
                                                                        double* dst) {
  for (int p = 0; p < depth; p++) {
    for (int q = 0; q < W; q += 2) wasm_v128_store(dst + p * W + q, wasm_v128_load(src + (size_t)p * cs + q));
  }
}

// A panel with `lanes` < W real lanes (or arbitrary strides): element by element, zero padded.
static void pack_any(int W, int lanes, int depth, const double* src, int rs, int cs, double* dst) {
  for (int p = 0; p < depth; p++) {
    for (int q = 0; q < W; q++) dst[p * W + q] = q < lanes ? src[(size_t)q * rs + (size_t)p * cs] : 0.0;
  }
}

static inline __attribute__((always_inline)) void pack(int W, int count, int depth, const uint8_t* src, int rs,
                                                       int cs, void* dst) {
  double* out = (double*)dst;
  for (int q = 0; q < count; q += W, out += W * depth) {
    const double* s = (const double*)src + (size_t)q * rs;
    const int lanes = count - q < W ? count - q : W;
    if (lanes == W && cs == 1 && W % 2 == 0) pack_rows_contiguous(W, depth, s, rs, out);
    else if (lanes == W && rs == 1 && W % 2 == 0) pack_lanes_contiguous(W, depth, s, cs, out);
    else pack_any(W, lanes, depth, s, rs, cs, out);
  }
}

void gemm_pack_a_f64(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) {
  pack(GEMM_F64_MR, count, depth, src, rs, cs, dst);
}
void gemm_pack_b_f64(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) {
  pack(GEMM_F64_NR, count, depth, src, rs, cs, dst);
}
