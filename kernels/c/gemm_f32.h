// The f32 GEMM's register tile and cache blocks, and its packing and microkernel entry points
// (A and B of type f32, bf16 or f16 are all packed into f32 panels for one f32 microkernel).
#pragma once
#include <stdint.h>

#ifndef GEMM_F32_MR
#define GEMM_F32_MR 4  // rows of the register tile
#endif
#define GEMM_F32_NR 8  // columns: two f32x4
#ifndef GEMM_F32_KC
#define GEMM_F32_KC 384
#endif
#ifndef GEMM_F32_MC
#define GEMM_F32_MC 128
#endif
#ifndef GEMM_F32_NC
#define GEMM_F32_NC 768
#endif

void gemm_pack_a_f32(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_b_f32(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_a_bf16(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_b_bf16(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_a_f16(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_pack_b_f16(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
void gemm_micro_f32(int kc, const void* a, const void* b, void* c, int ldc, int mr, int nr, const void* bias,
                    int load_c);
