// Exports of the f32-output GEMM: f32×f32, bf16×bf16 and f16×f16 (widened while packing),
// all through the f32 microkernel and the shared loop nest (gemm_drive.c).
// Strides are in elements: A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j*csb], so the
// caller expresses NN, NT and TN (and row/column sub-blocks for threads) without copies.
// Reference: the float64 GEMM loop in test/gemm.test.ts.
#include <emscripten.h>

#include "gemm.h"
#include "gemm_f32.h"

#define KERNEL(in_bytes, pa, pb) \
  {GEMM_F32_MR, GEMM_F32_NR, GEMM_F32_KC, GEMM_F32_MC, GEMM_F32_NC, in_bytes, 4, pa, pb, gemm_micro_f32}
static const gemm_kernel F32 = KERNEL(4, gemm_pack_a_f32, gemm_pack_b_f32);
static const gemm_kernel BF16 = KERNEL(2, gemm_pack_a_bf16, gemm_pack_b_bf16);
static const gemm_kernel F16 = KERNEL(2, gemm_pack_a_f16, gemm_pack_b_f16);

EMSCRIPTEN_KEEPALIVE int gemm_f32_scratch_bytes(int m, int n, int k) { return gemm_scratch_bytes(&F32, m, n, k); }

#define GEMM_EXPORT(name, kernel)                                                                               \
  EMSCRIPTEN_KEEPALIVE void name(int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,  \
                                 int csb, float* c, int ldc, const float* bias, int accumulate, void* scratch) { \
    gemm_drive(&kernel, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, scratch);                  \
  }
GEMM_EXPORT(gemm_f32, F32)
GEMM_EXPORT(gemm_bf16, BF16)
GEMM_EXPORT(gemm_f16, F16)
