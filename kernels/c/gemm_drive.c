// The blocked GEMM loop nest shared by every element type (gemm.h). Loop order jc → pc → ic →
// ir → jr: a kc×nc block of B is packed once (sized for L2) and reused by every row of tiles;
// each mr×kc micro-panel of A stays in L1 while the microkernel sweeps along a row of C, so C
// is read and written in sequential runs the hardware prefetcher follows. (The BLIS order,
// jr outside ir, walks C down columns with a row-sized stride and measured ~10% slower at 1024³.)
// Reference: test/gemm.test.ts compares every caller against a float64 triple loop.
#include "gemm.h"

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int round_up(int x, int to) { return (x + to - 1) / to * to; }

// A dimension of `size` cut into equal blocks of at most `max` (a multiple of `unit`): k = 784
// with kc ≤ 384 becomes 3 × 262 rather than 384 + 384 + 16, so no block is a sliver.
static int block(int size, int max, int unit) {
  if (size <= max) return round_up(size, unit);
  const int blocks = (size + max - 1) / max;
  return round_up((size + blocks - 1) / blocks, unit);
}
static int block_k(const gemm_kernel* g, int k) { return block(k, g->kc, 1); }
static int block_m(const gemm_kernel* g, int m) { return block(m, g->mc, g->mr); }
static int block_n(const gemm_kernel* g, int n) { return block(n, g->nc, g->nr); }

int gemm_scratch_bytes(const gemm_kernel* g, int m, int n, int k) {
  int kc = block_k(g, k);
  return (block_m(g, m) + block_n(g, n)) * kc * g->out_bytes + 64;
}

void gemm_drive(const gemm_kernel* g, int m, int n, int k, const void* a, int rsa, int csa, const void* b, int rsb,
                int csb, void* c, int ldc, const void* bias, int accumulate, void* scratch) {
  if (m <= 0 || n <= 0) return;
  const int in = g->in_bytes, out = g->out_bytes, mr = g->mr, nr = g->nr;
  const int kc_max = block_k(g, k), mc_max = block_m(g, m), nc_max = block_n(g, n);
  uint8_t* pack_a = (uint8_t*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  uint8_t* pack_b = pack_a + mc_max * kc_max * out;
  for (int jc = 0; jc < n; jc += nc_max) {
    const int nc = min_int(nc_max, n - jc);
    int pc = 0;
    do {  // runs once when k = 0, so that C still gets bias and accumulate
      const int kc = min_int(kc_max, k - pc);
      const int first = pc == 0;
      g->pack_b(nc, kc, (const uint8_t*)b + ((size_t)pc * rsb + (size_t)jc * csb) * in, csb, rsb, pack_b);
      for (int ic = 0; ic < m; ic += mc_max) {
        const int mc = min_int(mc_max, m - ic);
        g->pack_a(mc, kc, (const uint8_t*)a + ((size_t)ic * rsa + (size_t)pc * csa) * in, rsa, csa, pack_a);
        const uint8_t* ap = pack_a;
        for (int ir = 0; ir < mc; ir += mr, ap += mr * kc * out) {
          uint8_t* ci = (uint8_t*)c + ((size_t)(ic + ir) * ldc + jc) * out;
          for (int jr = 0; jr < nc; jr += nr) {
            const void* bias_j = first && bias ? (const uint8_t*)bias + (jc + jr) * out : 0;
            g->micro(kc, ap, pack_b + jr * kc * out, ci + jr * out, ldc, min_int(mr, mc - ir), min_int(nr, nc - jr),
                     bias_j, !first || accumulate);
          }
        }
      }
      pc += kc;
    } while (pc < k);
  }
}
