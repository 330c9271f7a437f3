// The scalar store of an f32 microkernel's edge tile (gemm_micro_f32.h): the tile's first mr
// rows and nr columns into C, adding bias and C in the order of the full-tile SIMD path, so an
// element's bits do not depend on whether it fell in an edge tile.
// Reference: the float64 GEMM loop in test/gemm.test.ts (edge sizes).
#include "gemm_f32.h"

void gemm_store_edge_f32(const float* tile, int stride, float* c, int ldc, int mr, int nr, const float* bias,
                         int load_c) {
  for (int i = 0; i < mr; i++) {
    for (int j = 0; j < nr; j++) {
      const float v = tile[i * stride + j] + (bias ? bias[j] : 0.0f);
      c[i * ldc + j] = load_c ? v + c[i * ldc + j] : v;
    }
  }
}
