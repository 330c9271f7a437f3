import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { add, mul } from "../src/ops/arith.ts";
import { mean, sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

describe("sum and mean", () => {
  const rng = new Rng(13);

  for (const dtype of ["f32", "f64"] as const) {
    const round = dtype === "f32" ? Math.fround : (v: number) => v;
    it(`value within the core bound; gradient 1 and 1/n, fresh and accumulated (kernel add_scalar) (${dtype})`, () => {
      for (const n of [...TAIL_SIZES.filter((k) => k > 0), 200_000]) {
        scope(() => {
          const x = tensor(randn(rng, n), [n], { dtype });
          const xv = x.toArray();
          const exact = xv.reduce((s, v) => s + v, 0);
          const abs = xv.reduce((s, v) => s + Math.abs(v), 0);
          expect(Math.abs(sum(x).toArray()[0] - round(exact))).toBeLessThanOrEqual(2e-6 * abs + 1e-300);
          expect(Math.abs(mean(x).toArray()[0] - round(exact / n))).toBeLessThanOrEqual((2e-6 * abs) / n + 1e-300);
          // sum + mean: the second gradient adds into the first
          const { grads } = valueAndGrad((p: any) => add(sum(p.x), mean(p.x)))({ x }, undefined);
          const g = (grads as any).x.toArray();
          const want = round(round(1 / n) + 1); // the fill (1/n, rounded) then + 1 (rounded)
          for (let i = 0; i < n; i++) if (g[i] !== want) throw new Error(`n ${n} element ${i}: ${g[i]} ≠ ${want}`);
        });
      }
    });
  }

  it("match finite differences in f64 and propagate through products", () => {
    scope(() => {
      gradCheck({ x: randTensor(rng, [3, 4]) }, (p) => sum(mul(p.x, p.x)));
      gradCheck({ x: randTensor(rng, [5]), y: randTensor(rng, [5]) }, (p) => mean(mul(p.x, p.y)));
    });
  });

  it("keep NaN in the value, give 0 for an empty sum, reject integers", () => {
    scope(() => {
      expect(sum(tensor([1, Number.NaN, 2], [3])).toArray()[0]).toBeNaN();
      expect(sum(tensor([], [0])).toArray()[0]).toBe(0);
      expect(() => sum(tensor([1], [1], { dtype: "i32" }))).toThrow(
        /sum: argument x has dtype i32, expected f32 or f64/,
      );
    });
  });
});
