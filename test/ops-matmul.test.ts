import { describe, expect, it } from "vitest";
import { blasFor, blasStatus } from "../ffi/blas.ts";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { linear, matmul } from "../src/ops/linear.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randn, randTensor } from "./ops-gradcheck.ts";

/** op(a) · op(b) in float64 for row-major a, b. */
function matmulRef(a: number[], b: number[], m: number, n: number, k: number, transA: boolean, transB: boolean) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = s;
    }
  }
  return out;
}

const transposeRef = (x: ArrayLike<number>, rows: number, cols: number) =>
  Float64Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]);

describe("matmul", () => {
  it("runs on the GEMM the project names: the WASM kernels under PLAIT_BLAS=off, else the system BLAS where found", () => {
    if (process.env.PLAIT_BLAS === "off") expect(blasFor("f32")).toBeUndefined();
    else expect(blasFor("f32") !== undefined).toBe(blasStatus().usable);
  });

  const rng = new Rng(14);
  const FLAGS = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const;

  it("matches finite differences in f64 for every transpose layout, with and without bias", () => {
    scope(() => {
      for (const [transA, transB] of FLAGS) {
        const [m, k, n] = [3, 4, 5];
        const a = randTensor(rng, transA ? [k, m] : [m, k]);
        const b = randTensor(rng, transB ? [n, k] : [k, n]);
        const t = randTensor(rng, [m, n]);
        gradCheck({ a, b }, (p) => mse(matmul(p.a, p.b, { transA, transB }), t));
        gradCheck({ a, b, bias: randTensor(rng, [n]) }, (p) =>
          mse(matmul(p.a, p.b, { transA, transB, bias: p.bias }), t),
        );
      }
    });
  });

  it("gives f32 gradients G·Bᵀ, Aᵀ·G and column sums within a k-proportional bound, at every tail", () => {
    for (const [m, k, n] of [
      [1, 1, 1],
      [3, 5, 4],
      [5, 17, 3],
      [17, 4, 5],
      [64, 1023, 10],
      [128, 784, 256],
    ]) {
      scope(() => {
        const a = tensor(randn(rng, m * k), [m, k], { dtype: "f32" });
        const b = tensor(randn(rng, k * n), [k, n], { dtype: "f32" });
        const bias = tensor(randn(rng, n), [n], { dtype: "f32" });
        const t = tensor(randn(rng, m * n), [m, n], { dtype: "f32" });
        const [av, bv, tv] = [a.toArray(), b.toArray(), t.toArray()];
        const { grads } = valueAndGrad((p: any) => mse(linear(p.a, p.b, p.bias), t))({ a, b, bias }, undefined);
        const y = matmulRef(av, bv, m, n, k, false, false).map((v, i) => v + bias.toArray()[i % n]);
        const gy = Array.from(y, (v, i) => (2 * (v - tv[i])) / (m * n));
        const da = matmulRef(gy, bv, m, k, n, false, true);
        const db = matmulRef(av, gy, k, n, m, true, false);
        const dbias = transposeRef(gy, m, n).reduce((acc, v, i) => {
          acc[Math.floor(i / m)] += v;
          return acc;
        }, new Float64Array(n));
        const g = grads as any;
        const scale = (x: ArrayLike<number>) => Array.from(x).reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        // f32 GEMM: error ≲ depth · 2⁻²⁴ · Σ|terms|; bounded here by depth · 4e-7 · max|result| · 4
        const tol = (depth: number, x: ArrayLike<number>) => {
          const bound = 4e-7 * depth * scale(x) * 4;
          return () => bound;
        };
        expectClose(g.a.toArray(), da, tol(n + k, da), `da [${m}, ${k}, ${n}]`);
        expectClose(g.b.toArray(), db, tol(m + k, db), `db [${m}, ${k}, ${n}]`);
        expectClose(g.bias.toArray(), dbias, tol(m + k, dbias), `dbias [${m}, ${k}, ${n}]`);
      });
    }
  });

  // Half operands themselves (the mixed-precision path) are tested in test/amp.test.ts.
  it("rejects a half operand beside anything but f32 or its own dtype, and passes the core's shape errors through", () => {
    scope(() => {
      const a = tensor([1, 2, 3, 4], [2, 2], { dtype: "bf16" });
      expect(() => matmul(a, tensor([1, 2, 3, 4], [2, 2], { dtype: "f64" }))).toThrow(
        /matmul: argument b has dtype f64; with a bf16 operand the other must be bf16 or f32/,
      );
      expect(() => matmul(tensor([1, 2, 3, 4], [2, 2], { dtype: "f16" }), a)).toThrow(
        /matmul: argument b has dtype bf16; with a f16 operand the other must be f16 or f32/,
      );
      expect(() => matmul(tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(6), [2, 3]))).toThrow(
        /matmul: inner dimensions differ/,
      );
      expect(() =>
        linear(tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(6), [3, 2]), tensor([1], [1])),
      ).toThrow(/matmul: argument bias has shape \[1\], expected \[2\]/);
    });
  });
});
