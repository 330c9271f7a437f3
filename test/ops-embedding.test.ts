import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { embedding } from "../src/ops/embedding.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

describe("embedding", () => {
  const rng = new Rng(4);

  for (const dtype of ["f32", "f64"] as const) {
    it(`gathers rows and scatter-adds repeated ids, at every tail of dim (${dtype})`, () => {
      for (const dim of [...TAIL_SIZES, 2000]) {
        scope(() => {
          const vocab = 7;
          const ids = new Int32Array([3, 0, 3, 6, 3, 1]);
          const table = tensor(randn(rng, vocab * dim), [vocab, dim], { dtype });
          const target = tensor(randn(rng, ids.length * dim), [2, 3, dim], { dtype });
          const idT = tensor(ids, [2, 3], { dtype: "i32" });
          const out = embedding(table, idT);
          expect(out.shape).toEqual([2, 3, dim]);
          const tv = table.toArray();
          const want = Array.from(ids).flatMap((id) => tv.slice(id * dim, (id + 1) * dim));
          expect(out.toArray()).toEqual(want);
          if (dim === 0) return;
          const { grads } = valueAndGrad((p: any) => mse(embedding(p.table, idT), target))({ table }, undefined);
          const n = ids.length * dim;
          const targetValues = target.toArray();
          const dy = want.map((v, i) => (2 * (v - targetValues[i])) / n);
          const ref = new Float64Array(vocab * dim);
          ids.forEach((id, i) => {
            for (let c = 0; c < dim; c++) ref[id * dim + c] += dy[i * dim + c];
          });
          const tol = dtype === "f64" ? 1e-14 : 1e-6;
          const bound = tol * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expectClose((grads as any).table.toArray(), ref, () => bound, `dtable dim ${dim}`);
        });
      }
    });
  }

  it("copies special values bit for bit", () => {
    scope(() => {
      const vals = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e-45, 3e38];
      const table = tensor(vals, [6, 1]);
      const out = embedding(table, tensor([5, 4, 3, 2, 1, 0], [6], { dtype: "i32" })).toArray();
      expect(out.map((v) => (Object.is(v, -0) ? "-0" : v))).toEqual(
        [...table.toArray()].reverse().map((v) => (Object.is(v, -0) ? "-0" : v)),
      );
    });
  });

  it("matches finite differences in f64", () => {
    scope(() => {
      const ids = tensor([2, 0, 2, 2], [4], { dtype: "i32" });
      const target = randTensor(rng, [4, 3]);
      gradCheck({ table: randTensor(rng, [3, 3]) }, (p) => mse(embedding(p.table, ids), target));
    });
  });

  it("rejects ids out of range and bad argument types, naming them", () => {
    scope(() => {
      const table = tensor(new Float32Array(12), [4, 3]);
      const ids = (v: number[]) => tensor(v, [v.length], { dtype: "i32" });
      expect(() => embedding(table, ids([0, 1, 2, 3, 0, 4]))).toThrow(
        /embedding: argument ids has 4 at flat index 5, expected a row of table \[4, 3\] in \[0, 4\)/,
      );
      expect(() => embedding(table, ids([-1]))).toThrow(/ids has -1 at flat index 0/);
      expect(() => embedding(table, tensor([0], [1]))).toThrow(/embedding: argument ids has dtype f32, expected i32/);
      expect(() => embedding(tensor([1, 2], [2]), ids([0]))).toThrow(/argument table must have 2 dimensions/);
    });
  });
});
