import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { gelu, relu, sigmoid, tanh } from "../src/ops/activation.ts";
import { add } from "../src/ops/arith.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { randn } from "./ops-gradcheck.ts";

// Each op's f32 gradient (f64: test/activation-f64.test.ts) is compared with central
// differences (in f64) of a plain float64 JavaScript forward of the same loss.
const REF: Record<string, (x: number) => number> = {
  relu: (x) => Math.max(x, 0),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
};
const OPS = { relu, gelu, tanh, sigmoid };

describe("activations", () => {
  const rng = new Rng(12);

  for (const [name, op] of Object.entries(OPS)) {
    it(`${name}: the f32 gradient matches float64 finite differences of the reference forward`, () => {
      for (const n of [1, 3, 4, 5, 17, 1023]) {
        scope(() => {
          // keep clear of relu's kink at 0, where a central difference straddles it
          const xs = Array.from(randn(rng, n, 2), (v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
          const ts = randn(rng, n);
          const x = tensor(xs, [n]);
          const t = tensor(ts, [n], { dtype: "f32" });
          const xv = x.toArray();
          const tv = t.toArray();
          const { loss, grads } = valueAndGrad((p: any) => mse(op(p.x), t))({ x }, undefined);
          const f = REF[name];
          const lossAt = (i: number, xi: number) => {
            let s = 0;
            for (let j = 0; j < n; j++) s += (f(j === i ? xi : xv[j]) - tv[j]) ** 2;
            return s / n;
          };
          expect(Math.abs(loss - lossAt(-1, 0))).toBeLessThan(1e-5 * (1 + lossAt(-1, 0)));
          const g = (grads as any).x.toArray();
          const h = 1e-6;
          const bound = 2e-5 / n; // f32 kernels: about 1e-5 of the gradient's scale 2/n
          for (let i = 0; i < n; i++) {
            const num = (lossAt(i, xv[i] + h) - lossAt(i, xv[i] - h)) / (2 * h);
            if (!(Math.abs(g[i] - num) <= bound * (1 + Math.abs(num) * n))) {
              throw new Error(`${name} n ${n} element ${i}: analytic ${g[i]}, numeric ${num}`);
            }
          }
        });
      }
    });
  }

  it("accumulate into a gradient another op already wrote (x used twice)", () => {
    scope(() => {
      const x = tensor([0.5, -1, 2, -0.25], [4]);
      const t = tensor([0, 0, 0, 0], [4]);
      const once = valueAndGrad((p: any) => mse(tanh(p.x), t))({ x }, undefined);
      const twice = valueAndGrad((p: any) => mse(add(tanh(p.x), tanh(p.x)), t))({ x }, undefined);
      // mse(2·tanh x, 0) = 4 · mse(tanh x, 0): the gradient is exactly 4 times (powers of two)
      const a = (once.grads as any).x.toArray();
      const b = (twice.grads as any).x.toArray();
      expect(b).toEqual(a.map((v: number) => 4 * v));
    });
  });

  it("reject non-float dtypes with the kernels' error", () => {
    scope(() => {
      expect(() => relu(tensor([1], [1], { dtype: "i32" }))).toThrow(
        /relu: argument x has dtype i32; relu supports f32, f64/,
      );
      expect(() => relu([1] as any)).toThrow(/relu: argument x must be a Tensor/);
    });
  });
});
