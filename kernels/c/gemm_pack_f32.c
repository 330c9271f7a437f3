// Packing for the f32 GEMM (gemm.h): copies `count` rows of A (or columns of B) by `depth` into
// panels of W interleaved lanes, dst[q / W][p][q % W] = src(q, p), widening bf16/f16 to f32
// (gemm_widen.h) and padding the last panel with zeros. One function per panel width W (the
// tiles' mr and nr: 4, 5, 6, 8, 16) and source type. Two SIMD paths for full panels: the
// depth-contiguous layout transposes 4×4 blocks (8 depth steps at a time, so 16-bit sources
// widen 8 halves per load), the count-contiguous layout copies W lanes per depth step; a W
// that is not a multiple of 4 takes its last four lanes as an overlapping group (lanes W-4..W-1,
// rewriting a few with the same values), so widths 5 and 6 stay vectorized. A partial panel
// (fewer than W lanes) or any other stride goes element by element.
// Reference: the float64 GEMM loop in test/gemm.test.ts and test/gemm-kernels.test.ts (all layouts).
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

// Start of the g-th group of four lanes in a W-wide panel: 0, 4, ..., and W - 4 for the last
// group when W is not a multiple of 4.
static inline int group(int W, int g) { return 4 * g + 4 > W ? W - 4 : 4 * g; }

// One full panel of W rows whose elements are contiguous along depth (A in NN, B in NT).
static inline __attribute__((always_inline)) void pack_rows_contiguous(int W, int dt, int depth, const uint8_t* src,
                                                                       int rs, float* dst) {
  const int groups = (W + 3) / 4;
  int p = 0;
  for (; p + 8 <= depth; p += 8) {
    for (int g = 0; g < groups; g++) {
      const int q = group(W, g);
      v128_t l0, l1, l2, l3, h0, h1, h2, h3;
      load8_f32(dt, src, (size_t)(q + 0) * rs + p, &l0, &h0);
      load8_f32(dt, src, (size_t)(q + 1) * rs + p, &l1, &h1);
      load8_f32(dt, src, (size_t)(q + 2) * rs + p, &l2, &h2);
      load8_f32(dt, src, (size_t)(q + 3) * rs + p, &l3, &h3);
      transpose4(&l0, &l1, &l2, &l3);
      transpose4(&h0, &h1, &h2, &h3);
      float* d = dst + p * W + q;
      wasm_v128_store(d + 0 * W, l0);
      wasm_v128_store(d + 1 * W, l1);
      wasm_v128_store(d + 2 * W, l2);
      wasm_v128_store(d + 3 * W, l3);
      wasm_v128_store(d + 4 * W, h0);
      wasm_v128_store(d + 5 * W, h1);
      wasm_v128_store(d + 6 * W, h2);
      wasm_v128_store(d + 7 * W, h3);
    }
  }
  for (; p + 4 <= depth; p += 4) {
    for (int g = 0; g < groups; g++) {
      const int q = group(W, g);
      v128_t r0 = load4_f32(dt, src, (size_t)(q + 0) * rs + p), r1 = load4_f32(dt, src, (size_t)(q + 1) * rs + p);
      v128_t r2 = load4_f32(dt, src, (size_t)(q + 2) * rs + p), r3 = load4_f32(dt, src, (size_t)(q + 3) * rs + p);
      transpose4(&r0, &r1, &r2, &r3);
      float* d = dst + p * W + q;
      wasm_v128_store(d + 0 * W, r0);
      wasm_v128_store(d + 1 * W, r1);
      wasm_v128_store(d + 2 * W, r2);
      wasm_v128_store(d + 3 * W, r3);
    }
  }
  for (; p < depth; p++) {  // scalar tail
    for (int q = 0; q < W; q++) dst[p * W + q] = load1_f32(dt, src, (size_t)q * rs + p);
  }
}

// One full panel of W lanes that are contiguous in memory (A in TN, B in NN): 8 lanes per load
// while 8 remain, then groups of four.
static inline __attribute__((always_inline)) void pack_lanes_contiguous(int W, int dt, int depth, const uint8_t* src,
                                                                        int cs, float* dst) {
  for (int p = 0; p < depth; p++) {
    const size_t row = (size_t)p * cs;
    float* d = dst + p * W;
    int q = 0;
    for (; q + 8 <= W; q += 8) {
      v128_t lo, hi;
      load8_f32(dt, src, row + q, &lo, &hi);
      wasm_v128_store(d + q, lo);
      wasm_v128_store(d + q + 4, hi);
    }
    for (; q < W; q += 4) {
      const int at = q + 4 > W ? W - 4 : q;
      wasm_v128_store(d + at, load4_f32(dt, src, row + at));
    }
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
    if (lanes == W && cs == 1) pack_rows_contiguous(W, dt, depth, s, rs, out);
    else if (lanes == W && rs == 1) pack_lanes_contiguous(W, dt, depth, s, cs, out);
    else pack_any(W, dt, lanes, depth, s, rs, cs, out);
  }
}

#define PACK_FNS(W)                                                                         \
  void gemm_pack_f32_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) {  \
    pack(W, GEMM_IN_F32, count, depth, src, rs, cs, dst);                                   \
  }                                                                                         \
  void gemm_pack_bf16_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) { \
    pack(W, GEMM_IN_BF16, count, depth, src, rs, cs, dst);                                  \
  }                                                                                         \
  void gemm_pack_f16_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst) {  \
    pack(W, GEMM_IN_F16, count, depth, src, rs, cs, dst);                                   \
  }
PACK_FNS(4)
PACK_FNS(5)
PACK_FNS(6)
PACK_FNS(8)
PACK_FNS(16)
