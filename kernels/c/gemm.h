// The GEMM family's shared parts: the descriptor of one element type's kernels and the blocked
// loop nest (gemm_drive.c) that runs them. The layout follows BLIS/GotoBLAS: C is computed in
// mr×nr tiles by a register-blocked microkernel that reads A and B from packed panels; the
// packing routines absorb transposes, strides, widening from 16-bit types and edge padding.
#pragma once
#include <stddef.h>
#include <stdint.h>

// A(i, p) lives at a + (i * rs + p * cs) elements: NN has cs = 1, TN (A stored transposed)
// has rs = 1. B(p, j) likewise. Panels hold depth × mr (or nr) elements, padded with zeros.
typedef void (*gemm_pack_fn)(int count, int depth, const uint8_t* src, int rs, int cs, void* dst);
// acc = A-panel · B-panel over depth kc; then C tile = acc (+ bias row) (+ C if load_c),
// written only for the first mr rows and nr columns.
typedef void (*gemm_micro_fn)(int kc, const void* a, const void* b, void* c, int ldc, int mr, int nr,
                              const void* bias, int load_c);

typedef struct {
  int mr, nr;          // register tile
  int kc, mc, nc;      // cache blocks: kc×nr B micro-panel in L1, mc×kc A block in L2, kc×nc B block in L3
  int in_bytes;        // bytes per source element of A and B
  int out_bytes;       // bytes per packed element and per element of C and bias
  gemm_pack_fn pack_a; // count = rows of A, padded to mr
  gemm_pack_fn pack_b; // count = columns of B, padded to nr
  gemm_micro_fn micro;
} gemm_kernel;

// C = A·B (+ bias) (+ C when accumulate) for an m×n block of C with row stride ldc.
void gemm_drive(const gemm_kernel* g, int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,
                int csb, void* c, int ldc, const void* bias, int accumulate, void* scratch);
// Bytes of scratch (both packing buffers) gemm_drive needs for an m×n×k problem.
int gemm_scratch_bytes(const gemm_kernel* g, int m, int n, int k);
