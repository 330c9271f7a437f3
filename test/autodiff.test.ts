import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { runtime, scope, type Tensor, tensor } from "../src/index.ts";
import { tanh } from "../src/ops/activation.ts";
import { add, mul, scale, sub } from "../src/ops/arith.ts";
import { layerNorm } from "../src/ops/layerNorm.ts";
import { linear } from "../src/ops/linear.ts";
import { mse, softmaxCrossEntropy } from "../src/ops/loss.ts";
import { sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, randTensor } from "./ops-gradcheck.ts";

const bytesInUse = () => runtime().arena.bytesInUse;

describe("valueAndGrad", () => {
  const rng = new Rng(15);

  it("returns grads with the params' structure; a param the loss ignores gets zeros", () => {
    scope(() => {
      const params = {
        layers: [{ w: randTensor(rng, [3, 2]), b: randTensor(rng, [2]) }],
        unused: { table: randTensor(rng, [4, 5]) },
      };
      const x = randTensor(rng, [6, 3]);
      const t = randTensor(rng, [6, 2]);
      const step = valueAndGrad((p: any, batch: { x: Tensor; t: Tensor }) =>
        mse(linear(batch.x, p.layers[0].w, p.layers[0].b), batch.t),
      );
      const { loss, grads } = step(params, { x, t });
      expect(typeof loss).toBe("number");
      const g = grads as any;
      expect(Object.keys(g).sort()).toEqual(["layers", "unused"]);
      expect(g.layers[0].w.shape).toEqual([3, 2]);
      expect(g.layers[0].b.shape).toEqual([2]);
      expect(g.unused.table.shape).toEqual([4, 5]);
      expect(g.unused.table.dtype).toBe("f64");
      expect(g.unused.table.toArray().every((v: number) => v === 0)).toBe(true);
      expect(g.layers[0].w.toArray().some((v: number) => v !== 0)).toBe(true);
    });
  });

  it("sums the gradients of a tensor used by several ops (fan-out) and of a param given as output", () => {
    scope(() => {
      const t = randTensor(rng, [3, 4]);
      const g = randTensor(rng, [4]);
      gradCheck({ x: randTensor(rng, [3, 4]), g }, (p) =>
        add(mse(layerNorm(p.x, p.g, p.g), t), mse(mul(p.x, sub(p.x, scale(p.x, 0.5))), add(p.x, p.x))),
      );
      // the loss is a param itself: d loss / d loss = 1
      const s = tensor([2.5], [], { dtype: "f64" });
      const { loss, grads } = valueAndGrad((p: any) => p.s)({ s }, undefined);
      expect(loss).toBe(2.5);
      expect((grads as any).s.toArray()).toEqual([1]);
    });
  });

  it("seeds the backward pass with lossScale: grads scale exactly by powers of two, loss does not", () => {
    scope(() => {
      const params = {
        w: randTensor(rng, [5, 3], "f32"),
        b: randTensor(rng, [3], "f32"),
        g: randTensor(rng, [3], "f32"),
      };
      const x = randTensor(rng, [8, 5], "f32");
      const labels = tensor([0, 1, 2, 1, 0, 2, 2, 1], [8], { dtype: "i32" });
      const step = valueAndGrad((p: any) =>
        softmaxCrossEntropy(layerNorm(tanh(linear(x, p.w, p.b)), p.g, p.b), labels),
      );
      const base = step(params, undefined);
      for (const s of [2 ** -8, 2, 2 ** 10, 2 ** 16]) {
        const scaled = step(params, undefined, { lossScale: s });
        expect(scaled.loss).toBe(base.loss);
        for (const k of ["w", "b", "g"]) {
          const a = (base.grads as any)[k].toArray();
          const b = (scaled.grads as any)[k].toArray();
          expect(b).toEqual(a.map((v: number) => v * s));
        }
      }
    });
  });

  it("frees every intermediate when it returns: only the grads remain, and disposing them restores the arena", () => {
    const params = { w: randTensor(rng, [16, 8], "f32"), b: randTensor(rng, [8], "f32") };
    const x = randTensor(rng, [32, 16], "f32");
    const t = randTensor(rng, [32, 8], "f32");
    const seen: Tensor[] = [];
    const step = valueAndGrad((p: any) => {
      const h = tanh(linear(x, p.w, p.b));
      const y = add(h, mul(h, h));
      seen.push(h, y);
      return mse(y, t);
    });
    // one warm-up call: the GEMM keeps a cached packing block from its first call on
    for (const t of Object.values(step(params, undefined).grads as Record<string, Tensor>)) t.dispose();
    const before = bytesInUse();
    const { grads } = step(params, undefined);
    expect(seen.every((s) => s.disposed)).toBe(true);
    const g = grads as any;
    expect(bytesInUse() - before).toBe(g.w.byteLength + 64); // w's grad (a multiple of 64) and b's, padded to 64
    g.w.dispose();
    g.b.dispose();
    expect(bytesInUse()).toBe(before);
  });

  it("records nothing outside valueAndGrad, nor after a lossFn throws", () => {
    const x = randTensor(rng, [4, 4], "f32");
    const g = randTensor(rng, [4], "f32");
    const before = bytesInUse();
    const y = layerNorm(x, g, g);
    expect(bytesInUse() - before).toBe(64); // the output only: no saved mean and rstd
    y.dispose();
    const failing = valueAndGrad((p: any) => {
      layerNorm(p.x, g, g);
      throw new Error("boom");
    });
    expect(() => failing({ x }, undefined)).toThrow("boom");
    expect(bytesInUse()).toBe(before);
    layerNorm(x, g, g).dispose();
    expect(bytesInUse()).toBe(before);
    for (const t of [x, g]) t.dispose();
  });

  it("nests: an inner valueAndGrad's result is a constant to the outer one", () => {
    scope(() => {
      const a = randTensor(rng, [3]);
      const t = randTensor(rng, [3]);
      const inner = valueAndGrad((p: any) => mse(p.a, t));
      const outer = valueAndGrad((p: any) => {
        const { grads } = inner({ a: p.a }, undefined); // 2(a − t)/3, new tensors outside the outer tape
        return add(mse(p.a, t), sum((grads as any).a));
      });
      const { loss, grads } = outer({ a }, undefined);
      const av = a.toArray();
      const tv = t.toArray();
      const m = av.reduce((s, v, i) => s + (v - tv[i]) ** 2, 0) / 3;
      const gsum = av.reduce((s, v, i) => s + (2 * (v - tv[i])) / 3, 0);
      expect(loss).toBeCloseTo(m + gsum, 12);
      const g = (grads as any).a.toArray();
      for (let i = 0; i < 3; i++) expect(g[i]).toBeCloseTo((2 * (av[i] - tv[i])) / 3, 12);
    });
  });

  it("rejects bad lossFn results, loss scales and params, naming them", () => {
    scope(() => {
      const a = randTensor(rng, [3]);
      const b = randTensor(rng, [3], "f32");
      const run =
        (fn: (p: any) => any, params: any = { a }, ctx?: any) =>
        () =>
          valueAndGrad(fn)(params, undefined, ctx);
      expect(run(() => 3)).toThrow(/valueAndGrad: lossFn must return a Tensor, got number/);
      expect(run((p) => p.a)).toThrow(/lossFn must return a scalar f32 or f64 tensor, got f64\[3\]/);
      expect(run(() => tensor([1], [1], { dtype: "i32" }))).toThrow(/scalar f32 or f64 tensor, got i32\[1\]/);
      for (const s of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(run((p) => sum(p.a), { a }, { lossScale: s })).toThrow(/ctx.lossScale must be a finite number > 0/);
      }
      expect(run((p) => sum(p.a), { a, b })).toThrow(
        /params leaf 1 \(f32\[3\]\) has dtype f32, expected f64 like the first leaf/,
      );
      expect(run((p) => sum(p.a), { a }, { computeDType: "f32" })).toThrow(
        /params leaf 0 \(f64\[3\]\) has dtype f64, expected f32 like ctx.computeDType/,
      );
      expect(run((p) => sum(p[0]), [a, a])).toThrow(/params leaf 1 is the same tensor as an earlier leaf/);
    });
  });
});
