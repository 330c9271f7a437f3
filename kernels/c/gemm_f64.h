// The f64 GEMM's register tile and cache blocks, and its packing and microkernel entry points.
#pragma once
#include <stdint.h>

#ifndef GEMM_F64_MR
#define GEMM_F64_MR 4  // rows of the register tile
#endif
#define GEMM_F64_NR 4  // columns: two f64x2
#ifndef GEMM_F64_KC
#define GEMM_F64_KC 256
#endif
#define GEMM_F64_MC 128
#ifndef GEMM_F64_NC
#define GEMM_F64_NC 512
#endif

void gemm_pack_a_f64(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_b_f64(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_micro_f64(int kc, const void* a, const void* b, void* c, int ldc, int mr, int nr, const void* bias,
                    int load_c);
