/** A GEMM problem of the bench suites: C[m, n] = op(A) · op(B) with op(A) [m, k], op(B) [k, n]. */
export interface Shape {
  name: string;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

export const square = (s: number): Shape => ({ name: `${s}³`, m: s, n: s, k: s, transA: false, transB: false });

export const gflops = (s: Shape, seconds: number): number => (2 * s.m * s.n * s.k) / seconds / 1e9;

/** `n` pseudo-random floats in [−1, 1) from a fixed LCG: the same inputs for every peer and run. */
export function randomF32(n: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 31 - 1;
  });
}
