// The f64 GEMM microkernel: an MR×4 tile of C in 2·MR f64x2 accumulators, A broadcast one value
// per row and depth step, B as two vectors. The relaxed build fuses multiply and add
// (f64x2.relaxed_madd). Edge tiles are computed in full from the zero-padded panels and stored
// element by element. Reference: the float64 GEMM loop in test/gemm.test.ts.
#include <wasm_simd128.h>

#include "gemm_f64.h"

#define MR GEMM_F64_MR

#ifdef PLAIT_RELAXED
#define MADD(a, b, c) __builtin_wasm_fma_f64x2(a, b, c)  // a*b + c once the build patches the opcode
#else
#define MADD(a, b, c) wasm_f64x2_add(wasm_f64x2_mul(a, b), c)
#endif

void gemm_micro_f64(int kc, const void* ap, const void* bp, void* cp, int ldc, int mr, int nr, const void* biasp,
                    int load_c) {
  const double* a = (const double*)ap;
  const double* b = (const double*)bp;
  double* c = (double*)cp;
  const double* bias = (const double*)biasp;
  v128_t acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = wasm_f64x2_splat(0.0);
  for (int p = 0; p < kc; p++, a += MR, b += 4) {
    const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 2);
    for (int i = 0; i < MR; i++) {
      const v128_t ai = wasm_v128_load64_splat(a + i);
      acc[i][0] = MADD(ai, b0, acc[i][0]);
      acc[i][1] = MADD(ai, b1, acc[i][1]);
    }
  }
  if (mr == MR && nr == 4) {
    const v128_t bias0 = bias ? wasm_v128_load(bias) : wasm_f64x2_splat(0.0);
    const v128_t bias1 = bias ? wasm_v128_load(bias + 2) : wasm_f64x2_splat(0.0);
    for (int i = 0; i < MR; i++) {
      double* ci = c + i * ldc;
      v128_t c0 = wasm_f64x2_add(acc[i][0], bias0), c1 = wasm_f64x2_add(acc[i][1], bias1);
      if (load_c) {
        c0 = wasm_f64x2_add(c0, wasm_v128_load(ci));
        c1 = wasm_f64x2_add(c1, wasm_v128_load(ci + 2));
      }
      wasm_v128_store(ci, c0);
      wasm_v128_store(ci + 2, c1);
    }
    return;
  }
  // Scalar tail for edge tiles: spill the accumulators (MR·32 bytes of stack) and store lanes.
  double tile[MR][4];
  for (int i = 0; i < MR; i++) {
    wasm_v128_store(&tile[i][0], acc[i][0]);
    wasm_v128_store(&tile[i][2], acc[i][1]);
  }
  for (int i = 0; i < mr; i++) {
    for (int j = 0; j < nr; j++) {
      double v = tile[i][j] + (bias ? bias[j] : 0.0);
      c[i * ldc + j] = load_c ? v + c[i * ldc + j] : v;
    }
  }
}
