// The "loadsplat" f32 microkernels, one per tile shape (template: gemm_micro_f32_loadsplat.inc).
// Reference: the float64 GEMM loop in test/gemm.test.ts, each kernel forced by name in
// test/gemm-kernels.test.ts.
#include "gemm_micro_f32.h"

#define MR 4
#define NR 8
#define NAME gemm_micro_f32_4x8_loadsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 5
#define NR 8
#define NAME gemm_micro_f32_5x8_loadsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 6
#define NR 8
#define NAME gemm_micro_f32_6x8_loadsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 8
#define NR 8
#define NAME gemm_micro_f32_8x8_loadsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME

#define MR 4
#define NR 16
#define NAME gemm_micro_f32_4x16_loadsplat
#include "gemm_micro_f32_loadsplat.inc"
#undef MR
#undef NR
#undef NAME
