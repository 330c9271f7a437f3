import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { mul } from "../src/ops/arith.ts";
import { permute } from "../src/ops/permute.ts";
import { max, mean, sum } from "../src/ops/reduce.ts";
import { argmax, logSumExp } from "../src/ops/reduceAxis.ts";
import { logSoftmax, softmax } from "../src/ops/softmax.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randTensor } from "./ops-gradcheck.ts";

/** The multi-index of flat index i in `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array(shape.length).fill(0);
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    idx[ax] = i % shape[ax];
    i = Math.floor(i / shape[ax]);
  }
  return idx;
}

/** Groups x's values by output element (row-major over the kept axes), in float64. */
function groups(x: number[], shape: number[], axes: number[]): number[][] {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const size = kept.reduce((a, b) => a * b, 1);
  const out: number[][] = Array.from({ length: size }, () => []);
  for (let i = 0; i < x.length; i++) {
    const idx = unravel(i, shape);
    let o = 0;
    for (let ax = 0; ax < shape.length; ax++) o = o * kept[ax] + (axes.includes(ax) ? 0 : idx[ax]);
    out[o].push(x[i]);
  }
  return out;
}

const REFS = {
  sum: (v: number[]) => v.reduce((a, b) => a + b, 0),
  mean: (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length,
  max: (v: number[]) => Math.max(...v),
  logSumExp: (v: number[]) => {
    const m = Math.max(...v);
    return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
  },
};
const FNS = {
  sum: (x: Tensor, a: number | number[], k: boolean) => sum(x, a, k),
  mean: (x: Tensor, a: number | number[], k: boolean) => mean(x, a, k),
  max: (x: Tensor, a: number | number[], k: boolean) => max(x, a, k),
  logSumExp: (x: Tensor, a: number | number[], k: boolean) => logSumExp(x, a, k),
};

const CASES: [number[], number | number[]][] = [
  [[2, 3, 4], 0],
  [[2, 3, 4], 1],
  [[2, 3, 4], -1],
  [
    [2, 3, 4],
    [0, 2],
  ],
  [
    [2, 3, 4],
    [2, 0, 1],
  ],
  [[5], 0],
  [[3, 1, 2], 1],
];

const norm = (a: number | number[], nd: number) => (Array.isArray(a) ? a : [a]).map((k) => (k < 0 ? k + nd : k));

describe("reductions along axes (sum, mean, max, logSumExp) with keepDims", () => {
  const rng = new Rng(51);

  for (const dtype of ["f32", "f64"] as const) {
    it(`match a float64 reference, shapes with and without keepDims (${dtype})`, () => {
      for (const [name, f] of Object.entries(FNS)) {
        for (const [shape, axis] of CASES) {
          for (const keepDims of [false, true]) {
            scope(() => {
              const x = randTensor(rng, shape, dtype);
              const axes = norm(axis, shape.length);
              const y = f(x, axis, keepDims);
              const want = shape
                .map((d, i) => (axes.includes(i) ? 1 : d))
                .filter((_d, i) => keepDims || !axes.includes(i));
              expect(y.shape, `${name} ${shape} ${axis}`).toEqual(want);
              expect(y.dtype).toBe(dtype);
              const ref = groups(x.toArray(), shape, axes).map(REFS[name as keyof typeof REFS]);
              const round = dtype === "f32" ? Math.fround : (v: number) => v;
              expectClose(y.toArray(), ref.map(round), (e) => 1e-14 * (1 + Math.abs(e)), `${name} ${shape} ${axis}`);
            });
          }
        }
      }
    });
  }

  it("match finite differences in f64 (max and logSumExp without ties)", () => {
    for (const f of Object.values(FNS)) {
      for (const [shape, axis] of CASES) {
        for (const keepDims of [false, true]) {
          scope(() => {
            const x = randTensor(rng, shape);
            const w = randTensor(rng, f(x, axis, keepDims).shape as number[]);
            gradCheck({ x }, (p) => sum(mul(f(p.x, axis, keepDims), w)));
          });
        }
      }
    }
  });

  it("max gives the whole gradient to the first tied element along the axis; logSumExp is stable", () =>
    scope(() => {
      const x = tensor([1, 3, 3, 2, 5, 3, 5, 0], [2, 4], { dtype: "f64" });
      const g = (valueAndGrad((p: any) => sum(max(p.x, 1)))({ x }, undefined).grads as any).x.toArray();
      expect(g).toEqual([0, 1, 0, 0, 1, 0, 0, 0]);
      const g0 = (valueAndGrad((p: any) => sum(max(p.x, 0)))({ x }, undefined).grads as any).x.toArray();
      expect(g0).toEqual([0, 1, 0, 1, 1, 0, 1, 0]); // columns [1,5], [3,3] (a tie: the first), [3,5], [2,0]
      const big = tensor([1000, 1000, -Infinity, -Infinity], [2, 2], { dtype: "f64" });
      expect(logSumExp(big, 1).toArray()).toEqual([1000 + Math.log(2), -Infinity]);
      expect(logSumExp(tensor([Infinity, 1], [2], { dtype: "f64" })).toArray()).toEqual([Infinity]);
      expect(max(tensor([1, Number.NaN, 2, 0], [2, 2]), 1).toArray()).toEqual([Number.NaN, 2]);
    }));

  it("sum over no axis given keepDims, and over every axis, keep the full-reduction value", () =>
    scope(() => {
      const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: "f64" });
      const k = sum(x, undefined, true);
      expect(k.shape).toEqual([1, 1]);
      expect(k.toArray()).toEqual([21]);
      expect(mean(x, [0, 1]).shape).toEqual([]);
      expect(mean(x, [0, 1]).toArray()).toEqual([3.5]);
      expect(sum(x, []).toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    }));

  it("refuse axes out of range or repeated, and an empty max, naming the op and the shape", () =>
    scope(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => sum(x, 2)).toThrow(
        "plait: sum: axis 2 is out of range for shape [2, 3] (expected an integer in [-2, 1])",
      );
      expect(() => mean(x, -3)).toThrow(
        "plait: mean: axis -3 is out of range for shape [2, 3] (expected an integer in [-2, 1])",
      );
      expect(() => max(x, [1, -1])).toThrow("plait: max: axis -1 appears twice in [1, -1]");
      expect(() => logSumExp(x, 1.5)).toThrow("plait: logSumExp: axis 1.5 is out of range for shape [2, 3]");
      expect(() => max(tensor(new Float32Array(0), [2, 0]), 1)).toThrow(
        "plait: max: the reduced axes of x [2, 0] are empty; a maximum needs elements",
      );
      expect(() => sum(tensor([1], [1], { dtype: "i32" }), 0)).toThrow(
        "plait: sum: argument x has dtype i32, expected f32 or f64",
      );
    }));
});

describe("softmax and logSoftmax along an axis", () => {
  const rng = new Rng(52);

  it("equal the last-axis version on the permuted input, for every axis (f32, f64)", () => {
    for (const dtype of ["f32", "f64"] as const) {
      for (const axis of [0, 1, 2, -1, -2, -3]) {
        scope(() => {
          const x = randTensor(rng, [2, 3, 4], dtype);
          const k = axis < 0 ? axis + 3 : axis;
          const order = [0, 1, 2].filter((a) => a !== k).concat([k]);
          const back = [0, 1, 2].map((i) => (i < k ? i : i === k ? 2 : i - 1));
          for (const f of [softmax, logSoftmax]) {
            const want = permute(f(permute(x, order)), back).toArray();
            expect(f(x, axis).toArray()).toEqual(want);
          }
          // and a float64 reference: softmax sums to 1 along the axis
          const s = sum(softmax(x, axis), axis).toArray();
          expectClose(s, new Array(s.length).fill(1), () => (dtype === "f32" ? 1e-6 : 1e-14));
        });
      }
    }
  });

  it("match finite differences in f64 along a middle axis", () =>
    scope(() => {
      for (const f of [softmax, logSoftmax]) {
        const w = randTensor(rng, [2, 3, 4]);
        gradCheck({ x: randTensor(rng, [2, 3, 4]) }, (p) => sum(mul(f(p.x, 1), w)));
      }
    }));

  it("refuses an axis out of range", () =>
    scope(() => {
      expect(() => softmax(tensor(new Float32Array(6), [2, 3]), 2)).toThrow(
        "plait: softmax: axis 2 is out of range for shape [2, 3] (expected an integer in [-2, 1])",
      );
    }));
});

describe("argmax", () => {
  it("gives the first index of the maximum along the axis, as i32 (f32, f64, f16, i32)", () =>
    scope(() => {
      for (const dtype of ["f32", "f64", "f16", "i32"] as const) {
        const x = tensor([1, 3, 3, 2, 5, 0, 5, 7], [2, 4], { dtype });
        const a1 = argmax(x, 1);
        expect(a1.dtype).toBe("i32");
        expect(a1.shape).toEqual([2]);
        expect(a1.toArray()).toEqual([1, 3]);
        expect(argmax(x, 0).toArray()).toEqual([1, 0, 1, 1]);
        expect(argmax(x, -1, true).shape).toEqual([2, 1]);
      }
      const x3 = tensor([0, 9, 1, 8, 2, 7, 3, 6], [2, 2, 2]);
      expect(argmax(x3, 1).toArray()).toEqual([1, 0, 1, 0]);
      expect(argmax(tensor([1, Number.NaN, 5], [3]), 0).toArray()).toEqual([1]);
    }));

  it("refuses a taped input, an axis out of range and an empty axis", () =>
    scope(() => {
      const x = tensor([1, 2, 3], [3]);
      let thrown: unknown;
      valueAndGrad((p: any) => {
        try {
          argmax(p.x, 0);
        } catch (e) {
          thrown = e;
        }
        return sum(p.x);
      })({ x }, undefined);
      expect((thrown as Error).message).toBe(
        "plait: argmax: argument x (f32[3]) is being recorded by valueAndGrad's tape, but argmax is not differentiable (it returns indices); compute it outside the loss function",
      );
      expect(() => argmax(x, 1)).toThrow(
        "plait: argmax: axis 1 is out of range for shape [3] (expected an integer in [-1, 0])",
      );
      expect(() => argmax(tensor(new Float32Array(0), [2, 0]), 1)).toThrow(
        "plait: argmax: axis 1 of x [2, 0] is empty; argmax needs elements",
      );
    }));
});
