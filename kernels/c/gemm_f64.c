// Exports of the f64 GEMM: f64×f64 → f64 through the f64x2 microkernel and the shared loop nest
// (gemm_drive.c). Strides are in elements, as for gemm_f32 (gemm_f32.c).
// Reference: the float64 GEMM loop in test/gemm.test.ts.
#include <emscripten.h>

#include "gemm.h"
#include "gemm_f64.h"

static const gemm_kernel F64 = {GEMM_F64_MR,     GEMM_F64_NR,     GEMM_F64_KC,   GEMM_F64_MC, GEMM_F64_NC, 8, 8,
                                 gemm_pack_a_f64, gemm_pack_b_f64, gemm_micro_f64};

EMSCRIPTEN_KEEPALIVE int gemm_f64_scratch_bytes(int m, int n, int k) { return gemm_scratch_bytes(&F64, m, n, k); }

EMSCRIPTEN_KEEPALIVE void gemm_f64(int m, int n, int k, const double* a, int rsa, int csa, const double* b, int rsb,
                                   int csb, double* c, int ldc, const double* bias, int accumulate, void* scratch) {
  gemm_drive(&F64, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, scratch);
}
