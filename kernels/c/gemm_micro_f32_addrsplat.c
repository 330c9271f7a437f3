// The "addrsplat" f32 microkernels: the loadsplat template (gemm_micro_f32_loadsplat.inc) with
// each A broadcast loaded from its own computed address at offset 0, for JavaScriptCore (Bun),
// which splits a broadcast load with an offset into a load and a shuffle. Same arithmetic, same
// bits as the loadsplat kernels. Reference: the float64 GEMM loop in test/gemm.test.ts, each
// kernel forced by name in test/gemm-kernels.test.ts.
#include "gemm_micro_f32.h"

#define GEMM_ADDR_SPLAT 1

#define MR 4
#define NR 8
#define NAME gemm_micro_f32_4x8_addrsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 5
#define NR 8
#define NAME gemm_micro_f32_5x8_addrsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 6
#define NR 8
#define NAME gemm_micro_f32_6x8_addrsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME
