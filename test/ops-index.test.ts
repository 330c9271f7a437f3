import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { mul, scale } from "../src/ops/arith.ts";
import { bmm } from "../src/ops/bmm.ts";
import { crossEntropy } from "../src/ops/classification.ts";
import { concat, stack } from "../src/ops/concat.ts";
import { gather } from "../src/ops/gather.ts";
import { permute } from "../src/ops/permute.ts";
import { sum } from "../src/ops/reduce.ts";
import { slice } from "../src/ops/slice.ts";
import { softmax } from "../src/ops/softmax.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { maskedFill, where } from "../src/ops/where.ts";
import { gradCheck, randTensor } from "./ops-gradcheck.ts";

/** Σ w · f(x) for a fixed random w of f's output shape: every output element counts. */
function weighted(rng: Rng, f: (p: Record<string, Tensor>) => Tensor, probe: Record<string, Tensor>) {
  const w = randTensor(rng, f(probe).shape as number[]);
  return (p: Record<string, Tensor>) => sum(mul(f(p), w));
}

const unravel = (i: number, shape: readonly number[]) => {
  const idx = new Array(shape.length).fill(0);
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    idx[ax] = i % shape[ax];
    i = Math.floor(i / shape[ax]);
  }
  return idx;
};
const ravel = (idx: number[], shape: readonly number[]) => idx.reduce((o, v, ax) => o * shape[ax] + v, 0);

describe("permute", () => {
  const rng = new Rng(61);
  it("out[i...] = x[i permuted] for every order of a 3-D and a 4-D tensor (f32, f64, f16, i32)", () => {
    const orders3 = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
      [-1, 0, -2],
    ];
    for (const dtype of ["f32", "f64", "f16", "i32"] as const) {
      const cases: [number[], number[][]][] = [
        [[2, 3, 4], orders3],
        [[2, 1, 3, 2], [[3, 1, 0, 2]]],
      ];
      for (const [shape, orders] of cases) {
        for (const order of orders) {
          scope(() => {
            const x = tensor(
              Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
              shape,
              { dtype },
            );
            const y = permute(x, order);
            const ax = order.map((a) => (a < 0 ? a + shape.length : a));
            expect(y.shape).toEqual(ax.map((a) => shape[a]));
            const got = y.toArray();
            for (let i = 0; i < got.length; i++) {
              const oi = unravel(i, y.shape);
              const xi = new Array(shape.length);
              ax.forEach((a, j) => {
                xi[a] = oi[j];
              });
              expect(got[i]).toBe(ravel(xi, shape));
            }
          });
        }
      }
    }
  });

  it("matches finite differences in f64", () =>
    scope(() => {
      const probe = { x: randTensor(rng, [2, 3, 4]) };
      gradCheck(
        probe,
        weighted(rng, (p) => permute(p.x, [2, 0, 1]), probe),
      );
    }));

  it("refuses an order that is not a permutation", () =>
    scope(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => permute(x, [0])).toThrow(
        "plait: permute: argument axes must list each of the 2 axes of x [2, 3] once, got [0]",
      );
      expect(() => permute(x, [1, -1])).toThrow(
        "plait: permute: argument axes [1,-1] repeats an axis; it must list each of the 2 axes of x [2, 3] once",
      );
      expect(() => permute(x, [0, 2])).toThrow(
        "plait: permute: axis 2 is out of range for shape [2, 3] (expected an integer in [-2, 1])",
      );
    }));
});

describe("concat and stack", () => {
  const rng = new Rng(62);
  it("concat joins along each axis (numpy's concatenate), any dtype", () =>
    scope(() => {
      const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: "f64" });
      const b = tensor([7, 8, 9], [1, 3], { dtype: "f64" });
      expect(concat([a, b], 0).toArray()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(concat([a, b], -2).shape).toEqual([3, 3]);
      const c = tensor([10, 20], [2, 1], { dtype: "f64" });
      const y = concat([a, c, a], 1);
      expect(y.shape).toEqual([2, 7]);
      expect(y.toArray()).toEqual([1, 2, 3, 10, 1, 2, 3, 4, 5, 6, 20, 4, 5, 6]);
      const h = concat([tensor([1, 2], [2], { dtype: "bf16" }), tensor([3], [1], { dtype: "bf16" })]);
      expect(h.dtype).toBe("bf16");
      expect(h.toArray()).toEqual([1, 2, 3]);
    }));

  it("stack adds a new axis at each position", () =>
    scope(() => {
      const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = tensor([7, 8, 9, 10, 11, 12], [2, 3]);
      expect(stack([a, b]).shape).toEqual([2, 2, 3]);
      expect(stack([a, b]).toArray()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(stack([a, b], 1).toArray()).toEqual([1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11, 12]);
      const last = stack([a, b], -1);
      expect(last.shape).toEqual([2, 3, 2]);
      expect(last.toArray()).toEqual([1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 6, 12]);
    }));

  it("match finite differences in f64, a tensor used twice included", () =>
    scope(() => {
      const probe = { a: randTensor(rng, [2, 3]), b: randTensor(rng, [2, 2]) };
      gradCheck(
        probe,
        weighted(rng, (p) => concat([p.a, p.b, p.a], 1), probe),
      );
      const probe2 = { a: randTensor(rng, [2, 3]), b: randTensor(rng, [2, 3]) };
      gradCheck(
        probe2,
        weighted(rng, (p) => stack([p.b, p.a, p.b], 1), probe2),
      );
    }));

  it("refuse mismatched shapes and dtypes, an empty list and a bad axis", () =>
    scope(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      expect(() => concat([a, tensor(new Float32Array(4), [2, 2])], 0)).toThrow(
        "plait: concat: argument xs[1] has shape [2, 2], xs[0] has [2, 3]; rule: equal on every axis but the concat axis 0",
      );
      expect(() => concat([a, tensor(new Float64Array(6), [2, 3])], 0)).toThrow(
        "plait: concat: argument xs[1] has dtype f64, expected f32 like xs[0]",
      );
      expect(() => concat([], 0)).toThrow("plait: concat: argument xs must be a non-empty array of tensors, got []");
      expect(() => concat([a], 2)).toThrow("plait: concat: axis 2 is out of range for shape [2, 3]");
      expect(() => stack([a, tensor(new Float32Array(3), [3])])).toThrow(
        "plait: stack: argument xs[1] has shape [3], xs[0] has [2, 3]; rule: every tensor has the same shape",
      );
      expect(() => stack([a], 3)).toThrow("plait: stack: axis 3 is out of range for shape [2, 3, 1]");
    }));
});

describe("strided copies", () => {
  it("long contiguous runs (native copies), merged axes and every element type copy bit for bit", () =>
    scope(() => {
      for (const dtype of ["f32", "f64", "f16", "bf16", "i32", "u8"] as const) {
        const n = 2 * 600;
        const vals = Array.from({ length: n }, (_, i) => (i * 7) % 251);
        const x = tensor(vals, [2, 600], { dtype });
        const left = slice(x, [0, 0], [2, 300]); // runs of 300
        expect(left.toArray()).toEqual([...vals.slice(0, 300), ...vals.slice(600, 900)]);
        const both = concat([x, x], 1); // runs of 600 into a [2, 1200]
        expect(both.toArray()).toEqual([
          ...vals.slice(0, 600),
          ...vals.slice(0, 600),
          ...vals.slice(600),
          ...vals.slice(600),
        ]);
        const t = permute(tensor(vals, [2, 3, 200], { dtype }), [1, 0, 2]); // merged: runs of 200
        expect(t.toArray().slice(200, 400)).toEqual(vals.slice(600, 800));
      }
      // NaN payloads and -0 survive a copy (bit patterns, not values)
      const special = tensor(new Float32Array([Number.NaN, -0, Number.POSITIVE_INFINITY]), [3]);
      const out = concat([special, special]).data();
      expect(Object.is(out[1], -0)).toBe(true);
      expect(Number.isNaN(out[3])).toBe(true);
    }));
});

describe("slice", () => {
  const rng = new Rng(63);
  it("takes x[s0:e0, s1:e1, ...] with defaults and negative indices (numpy semantics)", () =>
    scope(() => {
      const x = tensor(
        Array.from({ length: 24 }, (_, i) => i),
        [2, 3, 4],
        { dtype: "i32" },
      );
      // numpy: np.arange(24).reshape(2,3,4)[1:2, 0:3:1, 1:3] → [[[13, 14], [17, 18], [21, 22]]]
      const y = slice(x, [1, 0, 1], [2, 3, 3]);
      expect(y.shape).toEqual([1, 3, 2]);
      expect(y.toArray()).toEqual([13, 14, 17, 18, 21, 22]);
      // x[:, -1] (keeps the axis): [[[8..11]], [[20..23]]]
      expect(slice(x, [0, -1]).toArray()).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
      expect(slice(x, [0, 0, 1], [undefined, undefined, -1]).toArray()).toEqual([
        1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22,
      ]);
      expect(slice(x, [0, 2], [2, 2]).shape).toEqual([2, 0, 4]);
    }));

  it("matches finite differences in f64 (g inside the block, 0 outside)", () =>
    scope(() => {
      const probe = { x: randTensor(rng, [3, 4, 2]) };
      gradCheck(
        probe,
        weighted(rng, (p) => slice(p.x, [1, -3], [3, 3]), probe),
      );
    }));

  it("refuses ranges outside the axis and lists longer than the rank", () =>
    scope(() => {
      const x = tensor(new Float32Array(12), [3, 4]);
      expect(() => slice(x, [0, 2], [3, 5])).toThrow(
        "plait: slice: axis 1: range [2, 5) is not within [0, 4] of x [3, 4] (rule: 0 ≤ start ≤ end ≤ size, negatives count from the end)",
      );
      expect(() => slice(x, [2], [1])).toThrow("plait: slice: axis 0: range [2, 1) is not within [0, 3] of x [3, 4]");
      expect(() => slice(x, [0, 0, 0])).toThrow(
        "plait: slice: argument starts must be an array of at most 2 integers (one per axis of x [3, 4]), got [0,0,0]",
      );
      expect(() => slice(x, [0.5])).toThrow("plait: slice: argument starts has 0.5, expected integers");
    }));
});

describe("gather", () => {
  const rng = new Rng(64);
  it("is numpy's take along an axis, with indices of any shape", () =>
    scope(() => {
      const x = tensor(
        Array.from({ length: 12 }, (_, i) => i),
        [3, 4],
        { dtype: "f64" },
      );
      const i1 = tensor([2, 0, 2], [3], { dtype: "i32" });
      expect(gather(x, i1, 0).toArray()).toEqual([8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11]);
      const y = gather(x, tensor([3, 1, 1, 0], [2, 2], { dtype: "i32" }), 1);
      expect(y.shape).toEqual([3, 2, 2]);
      // np.take(np.arange(12).reshape(3,4), [[3,1],[1,0]], axis=1)
      expect(y.toArray()).toEqual([3, 1, 1, 0, 7, 5, 5, 4, 11, 9, 9, 8]);
      expect(gather(x, tensor([1], [1], { dtype: "i32" }), -1).toArray()).toEqual([1, 5, 9]);
    }));

  it("matches finite differences in f64, repeated indices summing their gradients", () =>
    scope(() => {
      const idx = tensor([2, 0, 2, 2], [2, 2], { dtype: "i32" });
      const probe = { x: randTensor(rng, [2, 3, 2]) };
      gradCheck(
        probe,
        weighted(rng, (p) => gather(p.x, idx, 1), probe),
      );
    }));

  it("refuses an index out of range (naming it), non-i32 indices and a bad axis", () =>
    scope(() => {
      const x = tensor(new Float32Array(10), [5, 2]);
      expect(() => gather(x, tensor([1, 5], [2], { dtype: "i32" }))).toThrow(
        "plait: gather: argument indices has 5 at flat index 1, expected an index into axis 0 of x [5, 2] in [0, 5)",
      );
      expect(() => gather(x, tensor([-1], [1], { dtype: "i32" }), 1)).toThrow(
        "plait: gather: argument indices has -1 at flat index 0, expected an index into axis 1 of x [5, 2] in [0, 2)",
      );
      expect(() => gather(x, tensor([1], [1]))).toThrow("plait: gather: argument indices has dtype f32, expected i32");
      expect(() => gather(x, tensor([1], [1], { dtype: "i32" }), 2)).toThrow(
        "plait: gather: axis 2 is out of range for shape [5, 2]",
      );
    }));
});

describe("where and maskedFill", () => {
  const rng = new Rng(65);
  it("where selects elementwise with broadcasting; maskedFill writes the value where the mask is set", () =>
    scope(() => {
      const mask = tensor([1, 0, 0, 1], [2, 2], { dtype: "u8" });
      const a = tensor([1, 2, 3, 4], [2, 2], { dtype: "f64" });
      const b = tensor([-1], [1], { dtype: "f64" });
      expect(where(mask, a, b).toArray()).toEqual([1, -1, -1, 4]);
      const row = tensor([0, 5], [2], { dtype: "i32" }); // i32: nonzero is true, broadcast over rows
      expect(where(row, a, b).toArray()).toEqual([-1, 2, -1, 4]);
      // a causal mask over [2, 3, 3] scores: position j > i filled with -inf
      const causal = tensor([0, 1, 1, 0, 0, 1, 0, 0, 0], [3, 3], { dtype: "u8" });
      const s = tensor(
        Array.from({ length: 18 }, (_, i) => i),
        [2, 3, 3],
      );
      const y = maskedFill(s, causal, Number.NEGATIVE_INFINITY).toArray();
      const ninf = Number.NEGATIVE_INFINITY;
      expect(y).toEqual([0, ninf, ninf, 3, 4, ninf, 6, 7, 8, 9, ninf, ninf, 12, 13, ninf, 15, 16, 17]);
      const h = maskedFill(tensor([1, 2], [2], { dtype: "f16" }), tensor([0, 1], [2], { dtype: "u8" }), -65504);
      expect(h.toArray()).toEqual([1, -65504]);
    }));

  it("match finite differences in f64 (gradients summed over broadcast axes)", () =>
    scope(() => {
      const mask = tensor([1, 0, 1, 0, 0, 1], [2, 3], { dtype: "u8" });
      const probe = { a: randTensor(rng, [2, 3]), b: randTensor(rng, [3]) };
      gradCheck(
        probe,
        weighted(rng, (p) => where(mask, p.a, p.b), probe),
      );
      const causal = tensor([0, 1, 0, 0], [2, 2], { dtype: "u8" });
      const probe2 = { x: randTensor(rng, [3, 2, 2]) };
      gradCheck(
        probe2,
        weighted(rng, (p) => maskedFill(p.x, causal, -5), probe2),
      );
    }));

  it("the mask gets no gradient and a masked-out element gets exactly 0", () =>
    scope(() => {
      const x = tensor([1, 2, 3], [3], { dtype: "f64" });
      const m = tensor([0, 1, 0], [3], { dtype: "u8" });
      const { grads } = valueAndGrad((p: any) => sum(maskedFill(p.x, m, 7)))({ x }, undefined);
      expect((grads as any).x.toArray()).toEqual([1, 0, 1]);
    }));

  it("refuse a float mask, mismatched dtypes, shapes that do not broadcast, a mask that grows x", () =>
    scope(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      expect(() => where(tensor([1], [1]), a, a)).toThrow(
        "plait: where: argument mask has dtype f32, expected u8 or i32",
      );
      expect(() => where(tensor([1], [1], { dtype: "u8" }), a, tensor([1], [1], { dtype: "f64" }))).toThrow(
        "plait: where: argument b has dtype f64, expected f32 like a",
      );
      expect(() => where(tensor([1, 0], [2], { dtype: "u8" }), a, a)).toThrow(
        "plait: where: shapes do not broadcast: mask [2], a [2, 3], b [2, 3] (axis -1 has 2 and 3; numpy rule: aligned at the last axis, each axis equal or 1)",
      );
      expect(() => maskedFill(a, tensor(new Uint8Array(12), [2, 2, 3], { dtype: "u8" }), 0)).toThrow(
        "plait: maskedFill: argument mask has shape [2, 2, 3], which broadcasts x [2, 3] to [2, 2, 3]; rule: the mask broadcasts to x's shape",
      );
    }));
});

describe("the README example: causal self-attention from the new ops", () => {
  const rng = new Rng(66);
  /** One head: softmax(mask(q·kᵀ/√d)) · v over [batch, t, d], then a cross-entropy on the last axis. */
  function attention(q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [, t, d] = q.shape;
    const causal = tensor(
      Array.from({ length: t * t }, (_, i) => (i % t > Math.floor(i / t) ? 1 : 0)),
      [t, t],
      { dtype: "u8" },
    );
    const scores = scale(bmm(q, k, { transB: true }), 1 / Math.sqrt(d)); // [batch, t, t]
    const att = softmax(maskedFill(scores, causal, Number.NEGATIVE_INFINITY), -1);
    return bmm(att, v); // [batch, t, d]
  }

  it("position i attends to positions ≤ i only, and the gradients match finite differences in f64", () =>
    scope(() => {
      const q = randTensor(rng, [2, 3, 4]);
      const k = randTensor(rng, [2, 3, 4]);
      const v = randTensor(rng, [2, 3, 4]);
      const y = attention(q, k, v).toArray();
      // row 0 of each batch sees only v[0]
      for (let b = 0; b < 2; b++) {
        for (let j = 0; j < 4; j++) expect(y[b * 12 + j]).toBeCloseTo(v.toArray()[b * 12 + j], 14);
      }
      const labels = tensor([0, 3, 1, 2, 2, 0], [2, 3], { dtype: "i32" });
      gradCheck({ q, k, v }, (p) => crossEntropy(attention(p.q, p.k, p.v), labels, { labelSmoothing: 0.1 }));
    }));
});
