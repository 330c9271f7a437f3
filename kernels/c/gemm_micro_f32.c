// The f32 GEMM microkernel: an MR×8 tile of C held in 2·MR f32x4 accumulators while it walks
// the packed panels (A: MR values per depth step, broadcast one at a time; B: 8 values, two
// vectors). V8 gives WASM 15 usable vector registers, which bounds MR. The plain build uses
// mul then add; the relaxed build fuses them (f32x4.relaxed_madd). Edge tiles (mr < MR or
// nr < 8) are computed in full from the zero-padded panels and stored element by element.
// Reference: the float64 GEMM loop in test/gemm.test.ts.
#include <wasm_simd128.h>

#include "gemm_f32.h"

#define MR GEMM_F32_MR

#ifdef PLAIT_RELAXED
#define MADD(a, b, c) __builtin_wasm_fma_f32x4(a, b, c)  // a*b + c once the build patches the opcode
#else
#define MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#endif

void gemm_micro_f32(int kc, const void* ap, const void* bp, void* cp, int ldc, int mr, int nr, const void* biasp,
                    int load_c) {
  const float* a = (const float*)ap;
  const float* b = (const float*)bp;
  float* c = (float*)cp;
  const float* bias = (const float*)biasp;
  v128_t acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0.0f);
  for (int p = 0; p < kc; p++, a += MR, b += 8) {
    const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
    for (int i = 0; i < MR; i++) {
      const v128_t ai = wasm_v128_load32_splat(a + i);
      acc[i][0] = MADD(ai, b0, acc[i][0]);
      acc[i][1] = MADD(ai, b1, acc[i][1]);
    }
  }
  if (mr == MR && nr == 8) {
    const v128_t bias0 = bias ? wasm_v128_load(bias) : wasm_f32x4_splat(0.0f);
    const v128_t bias1 = bias ? wasm_v128_load(bias + 4) : wasm_f32x4_splat(0.0f);
    for (int i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      v128_t c0 = wasm_f32x4_add(acc[i][0], bias0), c1 = wasm_f32x4_add(acc[i][1], bias1);
      if (load_c) {
        c0 = wasm_f32x4_add(c0, wasm_v128_load(ci));
        c1 = wasm_f32x4_add(c1, wasm_v128_load(ci + 4));
      }
      wasm_v128_store(ci, c0);
      wasm_v128_store(ci + 4, c1);
    }
    return;
  }
  // Scalar tail for edge tiles: spill the accumulators (MR·32 bytes of stack) and store lanes.
  float tile[MR][8];
  for (int i = 0; i < MR; i++) {
    wasm_v128_store(&tile[i][0], acc[i][0]);
    wasm_v128_store(&tile[i][4], acc[i][1]);
  }
  for (int i = 0; i < mr; i++) {
    for (int j = 0; j < nr; j++) {
      float v = tile[i][j] + (bias ? bias[j] : 0.0f);
      c[i * ldc + j] = load_c ? v + c[i * ldc + j] : v;
    }
  }
}
