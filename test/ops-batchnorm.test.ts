import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { cast, scope, tensor } from "../src/index.ts";
import { mul } from "../src/ops/arith.ts";
import { batchNorm } from "../src/ops/batchNorm.ts";
import { sum } from "../src/ops/reduce.ts";
import { expectClose, gradCheck, type Params, randn, randTensor } from "./ops-gradcheck.ts";

/** Batch norm by definition in float64: per-channel statistics over every axis but 1. */
function bnRef(x: ArrayLike<number>, shape: number[], gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number) {
  const [n, c] = shape;
  const s = shape.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float64Array(x.length);
  const mean: number[] = [];
  const varB: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const vals: number[] = [];
    for (let b = 0; b < n; b++) for (let i = 0; i < s; i++) vals.push(x[(b * c + ch) * s + i]);
    const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
    const v = vals.reduce((a, x) => a + (x - mu) ** 2, 0) / vals.length;
    mean.push(mu);
    varB.push(v);
    for (let b = 0; b < n; b++)
      for (let i = 0; i < s; i++) {
        const k = (b * c + ch) * s + i;
        out[k] = ((x[k] - mu) / Math.sqrt(v + eps)) * gamma[ch] + beta[ch];
      }
  }
  return { out, mean, varB, count: n * s };
}

describe("batchNorm", () => {
  const rng = new Rng(21);

  for (const shape of [
    [4, 3],
    [2, 3, 4, 5],
    [3, 2, 7],
  ]) {
    it(`training mode matches the float64 definition and updates the running statistics (x [${shape}])`, () => {
      scope(() => {
        const size = shape.reduce((a, b) => a * b);
        const c = shape[1];
        const xv = randn(rng, size, 2).map((v) => v + 1.5);
        const gv = randn(rng, c);
        const bv = randn(rng, c);
        const ref = bnRef(xv, shape, gv, bv, 1e-5);
        for (const dtype of ["f64", "f32"] as const) {
          const rm = tensor([0.5, ...Array(c - 1).fill(0)], [c], { dtype });
          const rv = tensor(Array(c).fill(2), [c], { dtype });
          const y = batchNorm(tensor(xv, shape, { dtype }), tensor(gv, [c], { dtype }), tensor(bv, [c], { dtype }), {
            train: true,
            runningMean: rm,
            runningVar: rv,
            momentum: 0.25,
          });
          expectClose(y.toArray(), ref.out, () => (dtype === "f64" ? 1e-12 : 1e-5), `batchNorm ${dtype}`);
          const wantMean = ref.mean.map((m, i) => 0.75 * (i === 0 ? 0.5 : 0) + 0.25 * m);
          const wantVar = ref.varB.map((v) => 0.75 * 2 + (0.25 * v * ref.count) / (ref.count - 1));
          expectClose(rm.toArray(), wantMean, () => (dtype === "f64" ? 1e-14 : 1e-6), "running mean");
          expectClose(rv.toArray(), wantVar, () => (dtype === "f64" ? 1e-13 : 1e-5), "running var (unbiased)");
        }
      });
    });

    it(`gradients of x, gamma and beta pass the float64 gradient check, training and evaluation (x [${shape}])`, () => {
      scope(() => {
        const c = shape[1];
        const params: Params = { x: randTensor(rng, shape), gamma: randTensor(rng, [c]), beta: randTensor(rng, [c]) };
        const r = randTensor(rng, shape);
        gradCheck(params, (p) => sum(mul(batchNorm(p.x, p.gamma, p.beta, { train: true }), r)));
        const runningMean = randTensor(rng, [c]);
        const runningVar = tensor(
          Array.from({ length: c }, (_, i) => 0.5 + i),
          [c],
          { dtype: "f64" },
        );
        gradCheck(params, (p) =>
          sum(mul(batchNorm(p.x, p.gamma, p.beta, { train: false, runningMean, runningVar }), r)),
        );
      });
    });
  }

  it("evaluation normalises with the running statistics and leaves them unchanged", () => {
    scope(() => {
      const x = tensor([1, 2, 3, 4], [2, 2], { dtype: "f32" });
      const rm = tensor([1, 2], [2], { dtype: "f32" });
      const rv = tensor([4, 1], [2], { dtype: "f32" });
      const y = batchNorm(x, tensor([2, 1], [2]), tensor([0, 1], [2]), {
        train: false,
        runningMean: rm,
        runningVar: rv,
        eps: 0,
      });
      expect(y.toArray()).toEqual([0, 1, 2, 3]);
      expect(rm.toArray()).toEqual([1, 2]);
      expect(rv.toArray()).toEqual([4, 1]);
    });
  });

  it("widens half gamma and beta (a 16-true model) to the dtype of x", () => {
    scope(() => {
      const x = randTensor(rng, [4, 2, 3], "f32");
      const y32 = batchNorm(x, tensor([1.5, -0.5], [2]), tensor([0.25, 2], [2]), { train: true });
      const yh = batchNorm(x, cast(tensor([1.5, -0.5], [2]), "bf16"), cast(tensor([0.25, 2], [2]), "f16"), {
        train: true,
      });
      expect(yh.dtype).toBe("f32");
      expect(yh.toArray()).toEqual(y32.toArray());
    });
  });

  it("refuses bad input naming the op and the rule", () => {
    scope(() => {
      const x = randTensor(rng, [2, 3, 4], "f32");
      const g = randTensor(rng, [3], "f32");
      expect(() => batchNorm(x, randTensor(rng, [2], "f32"), g, { train: true })).toThrow(
        "batchNorm: gamma has shape [2], expected [3] (the channels of x [2, 3, 4])",
      );
      expect(() => batchNorm(x, g, g, { train: false })).toThrow(
        "batchNorm: evaluation (train: false) normalises with the running statistics",
      );
      expect(() => batchNorm(x, g, g, { train: true, runningMean: g })).toThrow("give both runningMean and runningVar");
      expect(() => batchNorm(x, g, g, { train: true, momentum: 2 })).toThrow(
        "option momentum must be a number in [0, 1]",
      );
      expect(() => batchNorm(x, g, g, {} as never)).toThrow("option train must be a boolean");
      expect(() => batchNorm(x, g, g, { train: true, mom: 1 } as never)).toThrow("unknown option mom");
      expect(() => batchNorm(randTensor(rng, [3], "f32"), g, g, { train: true })).toThrow(
        "argument x must be [batch, channels, ...]",
      );
      expect(() => batchNorm(x, cast(g, "f64"), g, { train: true })).toThrow("gamma has dtype f64, expected f32");
    });
  });
});
