import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { layerNorm } from "../src/ops/layerNorm.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

/** Layer norm forward and backward in float64 (biased variance, two passes). */
function layerNormRef(
  x: number[],
  gamma: number[],
  beta: number[],
  dy: number[],
  rows: number,
  cols: number,
  eps: number,
) {
  const out = new Float64Array(rows * cols);
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const mu = row.reduce((s, v) => s + v, 0) / cols;
    const v = row.reduce((s, x) => s + (x - mu) ** 2, 0) / cols;
    const rho = 1 / Math.sqrt(v + eps);
    const xhat = row.map((x) => (x - mu) * rho);
    let a = 0;
    let b = 0;
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = xhat[c] * gamma[c] + beta[c];
      const g = dy[r * cols + c] * gamma[c];
      a += g / cols;
      b += (g * xhat[c]) / cols;
      dgamma[c] += dy[r * cols + c] * xhat[c];
      dbeta[c] += dy[r * cols + c];
    }
    for (let c = 0; c < cols; c++) dx[r * cols + c] = rho * (dy[r * cols + c] * gamma[c] - a - xhat[c] * b);
  }
  return { out, dx, dgamma, dbeta };
}

describe("layerNorm", () => {
  const rng = new Rng(3);

  for (const dtype of ["f32", "f64"] as const) {
    it(`matches the float64 reference, forward and backward, at every tail (${dtype})`, () => {
      for (const cols of [...TAIL_SIZES.filter((c) => c > 0), 4096]) {
        const rows = cols > 1000 ? 3 : 5;
        scope(() => {
          const x = tensor(randn(rng, rows * cols, 2), [rows, cols], { dtype });
          const gamma = tensor(randn(rng, cols), [cols], { dtype });
          const beta = tensor(randn(rng, cols), [cols], { dtype });
          const target = tensor(randn(rng, rows * cols), [rows, cols], { dtype });
          const eps = 1e-5;
          // loss = mse(y, target) gives dy = 2 (y − target) / n
          const { grads } = valueAndGrad((p: any) => mse(layerNorm(p.x, p.gamma, p.beta, eps), target))(
            { x, gamma, beta },
            undefined,
          );
          const y = layerNorm(x, gamma, beta, eps).toArray();
          const n = rows * cols;
          const tv = target.toArray();
          const ref0 = layerNormRef(
            x.toArray(),
            gamma.toArray(),
            beta.toArray(),
            new Array(n).fill(0),
            rows,
            cols,
            eps,
          );
          const dy = Array.from(ref0.out, (v, i) => (2 * (v - tv[i])) / n);
          const ref = layerNormRef(x.toArray(), gamma.toArray(), beta.toArray(), dy, rows, cols, eps);
          const tol = dtype === "f64" ? 1e-11 : 3e-5;
          expectClose(y, ref.out, (e) => tol * (1 + Math.abs(e)), `out [${rows}, ${cols}]`);
          // gradients: relative to the largest element (they are sums of terms of both signs)
          const near = (a: number[], e: Float64Array, what: string) => {
            const bound = tol * e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            expectClose(a, e, () => bound, what);
          };
          const g = grads as any;
          near(g.x.toArray(), ref.dx, "dx");
          near(g.gamma.toArray(), ref.dgamma, "dgamma");
          near(g.beta.toArray(), ref.dbeta, "dbeta");
        });
      }
    });
  }

  it("is shift-invariant for huge offsets, maps constant rows to beta and propagates NaN", () => {
    for (const dtype of ["f32", "f64"] as const) {
      scope(() => {
        const x = tensor([1e6, 1e6 + 1, 1e6 + 2, 1e6 + 3, 5, 5, 5, 5, 1, Number.NaN, 2, 3], [3, 4], { dtype });
        const ones = tensor([1, 1, 1, 1], [4], { dtype });
        const beta = tensor([0, -1.5, 2, 1e-40], [4], { dtype });
        const y = layerNorm(x, ones, beta).toArray();
        const s = Math.sqrt(1.25 + 1e-5);
        const b = beta.toArray();
        expectClose(y.slice(0, 4), [-1.5 / s, -0.5 / s - 1.5, 0.5 / s + 2, 1.5 / s + b[3]], () => 1e-6, "shifted row");
        expect(y.slice(4, 8)).toEqual(beta.toArray()); // (x − μ) is exactly 0
        expect(y.slice(8).every(Number.isNaN)).toBe(true);
      });
    }
  });

  it("matches finite differences in f64, also for higher-rank x", () => {
    scope(() => {
      const target = randTensor(rng, [2, 3, 5]);
      gradCheck({ x: randTensor(rng, [2, 3, 5]), gamma: randTensor(rng, [5]), beta: randTensor(rng, [5]) }, (p) =>
        mse(layerNorm(p.x, p.gamma, p.beta, 1e-3), target),
      );
    });
  });

  it("rejects mismatched parameter shapes and dtypes", () => {
    scope(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      const g3 = tensor([1, 1, 1], [3]);
      expect(() => layerNorm(x, tensor([1, 1], [2]), g3)).toThrow(
        /layerNorm: argument gamma has shape \[2\], expected \[3\] \(the last axis of x \[2, 3\]\)/,
      );
      expect(() => layerNorm(x, g3, tensor([1, 1, 1], [3], { dtype: "f64" }))).toThrow(
        /layerNorm: argument beta has dtype f64, expected f32 like x/,
      );
      expect(() => layerNorm(x, g3, g3, -1)).toThrow(/argument eps must be a finite number ≥ 0, got -1/);
    });
  });
});
