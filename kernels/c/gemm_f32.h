// The f32 GEMM family: cache blocks shared by every register tile, and the packing,
// microkernel and store entry points (A and B of type f32, bf16 or f16 are all packed into f32
// panels for the f32 microkernels). Every kernel uses the same kc blocking and sums each
// element of C in the same order (p = 0, 1, ... within a kc block, then bias, then C), so all
// tiles and loading schemes give the same bits in the plain build (test/gemm-kernels.test.ts).
#pragma once
#include <stdint.h>

#ifndef GEMM_F32_KC
#define GEMM_F32_KC 384
#endif
#ifndef GEMM_F32_MC
#define GEMM_F32_MC 120  // a multiple of every mr (4, 5, 6, 8), so no tile straddles an A block
#endif
#ifndef GEMM_F32_NC
#define GEMM_F32_NC 768
#endif

// Panels W lanes wide (gemm.h's pack signature), from f32, bf16 or f16 sources.
#define GEMM_PACK_DECL(W)                                                                      \
  void gemm_pack_f32_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);  \
  void gemm_pack_bf16_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst); \
  void gemm_pack_f16_w##W(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
GEMM_PACK_DECL(4)
GEMM_PACK_DECL(5)
GEMM_PACK_DECL(6)
GEMM_PACK_DECL(8)
GEMM_PACK_DECL(16)

// Microkernels (gemm.h's micro signature), named by tile and how A is broadcast: "loadsplat"
// reads each A value with v128.load32_splat, "splat" loads four A values as one vector and
// shuffles each lane across it (XNNPACK's names for the two schemes); "addrsplat" is loadsplat
// with each A address computed apart (offset 0), for JavaScriptCore.
#define GEMM_MICRO_DECL(MR, NR)                                                                                \
  void gemm_micro_f32_##MR##x##NR##_loadsplat(int kc, const void* a, const void* b, void* c, int ldc, int mr, \
                                              int nr, const void* bias, int load_c);                          \
  void gemm_micro_f32_##MR##x##NR##_splat(int kc, const void* a, const void* b, void* c, int ldc, int mr, int nr, \
                                          const void* bias, int load_c);
GEMM_MICRO_DECL(4, 8)
GEMM_MICRO_DECL(5, 8)
GEMM_MICRO_DECL(6, 8)
GEMM_MICRO_DECL(8, 8)
GEMM_MICRO_DECL(4, 16)
#define GEMM_MICRO_ADDR_DECL(MR, NR)                                                                            \
  void gemm_micro_f32_##MR##x##NR##_addrsplat(int kc, const void* a, const void* b, void* c, int ldc, int mr, \
                                              int nr, const void* bias, int load_c);
GEMM_MICRO_ADDR_DECL(4, 8)
GEMM_MICRO_ADDR_DECL(5, 8)
GEMM_MICRO_ADDR_DECL(6, 8)

// An edge tile (mr rows, nr columns of a `stride`-wide f32 tile spilled by a microkernel) into
// C, with the full-tile path's order of additions: (acc + bias) + C.
void gemm_store_edge_f32(const float* tile, int stride, float* c, int ldc, int mr, int nr, const float* bias,
                         int load_c);
