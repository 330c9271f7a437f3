// The row-major → column-major mapping of matmul onto cuBLAS (ffi/cuda/cublas.ts: gemmArgs),
// checked without a GPU: a float64 GEMM with cuBLAS's exact semantics (column-major, op N/T,
// leading dimensions, beta) is run in the test on the same row-major arrays through the
// mapping, and must give the row-major product core.matmul defines, for every transpose pair,
// with accumulate (beta = 1), at empty and odd sizes. cuBLAS's own argument rules (ld ≥ rows)
// are checked too.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CUBLAS_OP_N, CUBLAS_OP_T } from "../ffi/cuda/api.ts";
import { gemmArgs } from "../ffi/cuda/cublas.ts";

/** cuBLAS gemm semantics in float64: C = alpha·op(A)·op(B) + beta·C, all column-major. */
function cublasGemmRef(
  opA: number,
  opB: number,
  m: number,
  n: number,
  k: number,
  A: Float64Array,
  lda: number,
  B: Float64Array,
  ldb: number,
  beta: number,
  C: Float64Array,
  ldc: number,
): void {
  // cuBLAS's CUBLAS_STATUS_INVALID_VALUE rules for the leading dimensions
  expect(lda).toBeGreaterThanOrEqual(Math.max(1, opA === CUBLAS_OP_N ? m : k));
  expect(ldb).toBeGreaterThanOrEqual(Math.max(1, opB === CUBLAS_OP_N ? k : n));
  expect(ldc).toBeGreaterThanOrEqual(Math.max(1, m));
  const a = (i: number, p: number) => (opA === CUBLAS_OP_N ? A[i + p * lda] : A[p + i * lda]);
  const b = (p: number, j: number) => (opB === CUBLAS_OP_N ? B[p + j * ldb] : B[j + p * ldb]);
  for (let j = 0; j < n; j++)
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a(i, p) * b(p, j);
      C[i + j * ldc] = s + (beta === 0 ? 0 : beta * C[i + j * ldc]);
    }
}

/** The row-major definition: C[i, j] = Σ op(a)[i, p]·op(b)[p, j] (+ c0[i, j]). */
function rowMajorRef(a: Float64Array, b: Float64Array, m: number, n: number, k: number, tA: boolean, tB: boolean) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

const ints = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => ((i * 7 + seed * 13) % 11) - 5);

describe("gemmArgs: matmul's row-major product as one column-major cuBLAS call", () => {
  it("NN, NT, TN, TT with and without accumulate, sizes 0-9, equal the row-major product", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 9 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 100 }),
        (m, n, k, tA, tB, acc, seed) => {
          const a = ints(m * k, seed);
          const b = ints(k * n, seed + 1);
          const c0 = ints(m * n, seed + 2);
          const g = gemmArgs(m, n, k, tA, tB);
          expect(g).toMatchObject({ m: n, n: m, k, A: "b", B: "a" });
          const c = Float64Array.from(c0);
          cublasGemmRef(g.opA, g.opB, g.m, g.n, g.k, b, g.lda, a, g.ldb, acc ? 1 : 0, c, g.ldc);
          const want = rowMajorRef(a, b, m, n, k, tA, tB).map((v, i) => v + (acc ? c0[i] : 0));
          expect([...c]).toEqual([...want]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("the flags: b's transpose becomes cuBLAS's opA, a's its opB; leading dimensions are the stored row lengths", () => {
    expect(gemmArgs(2, 3, 4, false, false)).toEqual({
      opA: CUBLAS_OP_N,
      opB: CUBLAS_OP_N,
      m: 3,
      n: 2,
      k: 4,
      A: "b",
      lda: 3,
      B: "a",
      ldb: 4,
      ldc: 3,
    });
    expect(gemmArgs(2, 3, 4, true, true)).toMatchObject({ opA: CUBLAS_OP_T, opB: CUBLAS_OP_T, lda: 4, ldb: 2 });
    expect(gemmArgs(0, 0, 0, false, false)).toMatchObject({ lda: 1, ldb: 1, ldc: 1 });
  });
});
