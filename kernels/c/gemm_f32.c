// Exports of the f32-output GEMM: f32×f32, bf16×bf16 and f16×f16 (widened while packing), one
// set per microkernel (gemm_<type>_<MR>x<NR>_<scheme>, e.g. gemm_f32_6x8_splat), all through
// the shared loop nest (gemm_drive.c). src/core/gemm.ts picks one kernel per process (timed,
// forced by PLAIT_GEMM_KERNEL, or the fixed 4x8_loadsplat in deterministic mode); gemm_f32,
// gemm_bf16 and gemm_f16 are that fixed kernel.
// Strides are in elements: A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j*csb], so the
// caller expresses NN, NT and TN (and row/column sub-blocks for threads) without copies.
// Reference: the float64 GEMM loop in test/gemm.test.ts and test/gemm-kernels.test.ts.
#include <emscripten.h>

#include "gemm.h"
#include "gemm_f32.h"

#define DESCRIPTOR(MR, NR, scheme, type, in_bytes)                                                   \
  {MR, NR, GEMM_F32_KC, GEMM_F32_MC, GEMM_F32_NC, in_bytes, 4, gemm_pack_##type##_w##MR,              \
   gemm_pack_##type##_w##NR, gemm_micro_f32_##MR##x##NR##_##scheme}

#define EXPORT(MR, NR, scheme, type, in_bytes)                                                          \
  static const gemm_kernel K_##type##_##MR##x##NR##_##scheme = DESCRIPTOR(MR, NR, scheme, type, in_bytes); \
  EMSCRIPTEN_KEEPALIVE void gemm_##type##_##MR##x##NR##_##scheme(                                         \
      int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb, int csb, float* c, int ldc, \
      const float* bias, int accumulate, void* scratch) {                                                 \
    gemm_drive(&K_##type##_##MR##x##NR##_##scheme, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, \
               scratch);                                                                                  \
  }

#define KERNEL(MR, NR, scheme)        \
  EXPORT(MR, NR, scheme, f32, 4)      \
  EXPORT(MR, NR, scheme, bf16, 2)     \
  EXPORT(MR, NR, scheme, f16, 2)

KERNEL(4, 8, loadsplat)
KERNEL(4, 8, splat)
KERNEL(5, 8, loadsplat)
KERNEL(5, 8, splat)
KERNEL(6, 8, loadsplat)
KERNEL(6, 8, splat)
KERNEL(8, 8, loadsplat)
KERNEL(8, 8, splat)
KERNEL(4, 16, loadsplat)
KERNEL(4, 16, splat)
KERNEL(4, 8, addrsplat)
KERNEL(5, 8, addrsplat)
KERNEL(6, 8, addrsplat)

// The fixed kernel under its old names.
EMSCRIPTEN_KEEPALIVE void gemm_f32(int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,
                                   int csb, float* c, int ldc, const float* bias, int accumulate, void* scratch) {
  gemm_drive(&K_f32_4x8_loadsplat, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, scratch);
}
EMSCRIPTEN_KEEPALIVE void gemm_bf16(int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,
                                    int csb, float* c, int ldc, const float* bias, int accumulate, void* scratch) {
  gemm_drive(&K_bf16_4x8_loadsplat, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, scratch);
}
EMSCRIPTEN_KEEPALIVE void gemm_f16(int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,
                                   int csb, float* c, int ldc, const float* bias, int accumulate, void* scratch) {
  gemm_drive(&K_f16_4x8_loadsplat, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, bias, accumulate, scratch);
}

// Scratch for an m×n×k product that suffices for every kernel above. gemm_drive rounds its
// blocks up to the kernel's own tile, and no one tile bounds the others (m = 7 packs 12 rows for
// a 6-row tile but 8 for an 8-row one; m = 128 packs 130 for MR 5 and 132 for MR 6), so the
// bound is the most any of them needs.
static const gemm_kernel* const ALL_F32[] = {
    &K_f32_4x8_loadsplat, &K_f32_4x8_splat, &K_f32_5x8_loadsplat,  &K_f32_5x8_splat,  &K_f32_6x8_loadsplat,
    &K_f32_6x8_splat,     &K_f32_8x8_loadsplat, &K_f32_8x8_splat, &K_f32_4x16_loadsplat, &K_f32_4x16_splat,
    &K_f32_4x8_addrsplat, &K_f32_5x8_addrsplat, &K_f32_6x8_addrsplat,
};

EMSCRIPTEN_KEEPALIVE int gemm_f32_scratch_bytes(int m, int n, int k) {
  int most = 0;
  for (size_t i = 0; i < sizeof ALL_F32 / sizeof ALL_F32[0]; i++) {
    const int bytes = gemm_scratch_bytes(ALL_F32[i], m, n, k);
    if (bytes > most) most = bytes;
  }
  return most;
}
