// Gradients of the differentiable math ops (exp, log, div, fma, clamp, softmax, logSoftmax,
// max, maxAbs, sumSquares, cast) against central differences of an independent float64
// JavaScript forward, on f32 and f64 params, with the op's input gradient both fresh and
// accumulated into (a later consumer of the same param runs its backward first).
import { describe, expect, it } from "vitest";
import type { DType } from "../src/core/dtype.ts";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { add, div, fma, mul } from "../src/ops/arith.ts";
import { cast } from "../src/ops/cast.ts";
import { clamp } from "../src/ops/clamp.ts";
import { max, maxAbs, sum, sumSquares } from "../src/ops/reduce.ts";
import { logSoftmax, softmax } from "../src/ops/softmax.ts";
import { exp, log } from "../src/ops/unary.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, type Params, randn } from "./ops-gradcheck.ts";

type Vals = Record<string, number[]>;

interface Case {
  name: string;
  /** Param name → shape and a generator of its values (kept clear of kinks and domain edges). */
  params: Record<string, { shape: number[]; gen: (rng: Rng, n: number) => number[] }>;
  apply: (p: Params) => Tensor;
  /** The op's output, flattened, in float64 from the params' values. */
  ref: (v: Vals) => number[];
  /** Param dtypes supported (default f32 and f64). */
  dtypes?: readonly DType[];
}

const normal =
  (std = 1) =>
  (rng: Rng, n: number) =>
    Array.from(randn(rng, n, std));
const positive = (rng: Rng, n: number) => Array.from(randn(rng, n), (v) => 0.3 + Math.abs(v));
const awayFromZero = (rng: Rng, n: number) => Array.from(randn(rng, n), (v) => (v < 0 ? -1 : 1) * (0.5 + Math.abs(v)));
/** Normal values at least 0.05 from the clamp bounds below (so a central difference never straddles one). */
const clampInput = (rng: Rng, n: number) =>
  Array.from(randn(rng, n, 1.5), (v) => (Math.abs(v - LO) < 0.05 || Math.abs(v - HI) < 0.05 ? v + 0.2 : v));
const LO = -0.75;
const HI = 1.25;

function rowwise(xs: number[], cols: number, f: (row: number[]) => number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < xs.length; r += cols) out.push(...f(xs.slice(r, r + cols)));
  return out;
}
const refSoftmax = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const refLogSoftmax = (row: number[]) => {
  const m = Math.max(...row);
  const ls = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - m - ls);
};

const CASES: Case[] = [
  {
    name: "exp",
    params: { x: { shape: [3, 5], gen: normal() } },
    apply: (p) => exp(p.x),
    ref: (v) => v.x.map(Math.exp),
  },
  { name: "log", params: { x: { shape: [17], gen: positive } }, apply: (p) => log(p.x), ref: (v) => v.x.map(Math.log) },
  {
    name: "div",
    params: { a: { shape: [4, 5], gen: normal() }, b: { shape: [4, 5], gen: awayFromZero } },
    apply: (p) => div(p.a, p.b),
    ref: (v) => v.a.map((a, i) => a / v.b[i]),
  },
  {
    name: "div with one param on both sides (x / e^x)",
    params: { x: { shape: [6], gen: normal() } },
    apply: (p) => div(p.x, exp(p.x)),
    ref: (v) => v.x.map((x) => x / Math.exp(x)),
  },
  {
    name: "fma",
    params: {
      a: { shape: [2, 3], gen: normal() },
      b: { shape: [2, 3], gen: normal() },
      c: { shape: [2, 3], gen: normal() },
    },
    apply: (p) => fma(p.a, p.b, p.c),
    ref: (v) => v.a.map((a, i) => a * v.b[i] + v.c[i]),
  },
  {
    name: "fma(x, x, x)",
    params: { x: { shape: [7], gen: normal() } },
    apply: (p) => fma(p.x, p.x, p.x),
    ref: (v) => v.x.map((x) => x * x + x),
  },
  {
    name: "clamp",
    params: { x: { shape: [25], gen: clampInput } },
    apply: (p) => clamp(p.x, LO, HI),
    ref: (v) => v.x.map((x) => Math.min(Math.max(x, LO), HI)),
  },
  {
    name: "softmax (2-d)",
    params: { x: { shape: [3, 7], gen: normal(2) } },
    apply: (p) => softmax(p.x),
    ref: (v) => rowwise(v.x, 7, refSoftmax),
  },
  {
    name: "softmax (3-d, rows over the leading axes)",
    params: { x: { shape: [2, 3, 5], gen: normal(2) } },
    apply: (p) => softmax(p.x),
    ref: (v) => rowwise(v.x, 5, refSoftmax),
  },
  {
    name: "logSoftmax (2-d)",
    params: { x: { shape: [4, 6], gen: normal(2) } },
    apply: (p) => logSoftmax(p.x),
    ref: (v) => rowwise(v.x, 6, refLogSoftmax),
  },
  {
    name: "logSoftmax (1-d)",
    params: { x: { shape: [9], gen: normal(2) } },
    apply: (p) => logSoftmax(p.x),
    ref: (v) => refLogSoftmax(v.x),
  },
  {
    name: "max",
    params: { x: { shape: [3, 4], gen: normal() } },
    apply: (p) => max(p.x),
    ref: (v) => [Math.max(...v.x)],
  },
  {
    name: "maxAbs",
    params: { x: { shape: [13], gen: normal() } },
    apply: (p) => maxAbs(p.x),
    ref: (v) => [Math.max(...v.x.map(Math.abs))],
  },
  {
    name: "sumSquares",
    params: { x: { shape: [2, 9], gen: normal() } },
    apply: (p) => sumSquares(p.x),
    ref: (v) => [v.x.reduce((s, x) => s + x * x, 0)],
  },
  {
    name: "cast to the other float dtype",
    params: { x: { shape: [5], gen: normal() } },
    apply: (p) => cast(p.x, p.x.dtype === "f32" ? "f64" : "f32"),
    ref: (v) => v.x,
  },
  {
    name: "cast through f16 and back (straight through)",
    params: { x: { shape: [6], gen: normal() } },
    apply: (p) => cast(cast(p.x, "f16"), "f32"),
    // the forward rounds to f16; the reference is the identity, whose gradient the op passes
    ref: (v) => v.x,
    dtypes: ["f32"],
  },
];

/** w · y summed: the op's output against fixed random weights, so every output element matters. */
function weighted(y: Tensor, w: Tensor): Tensor {
  return sum(mul(y, w.dtype === y.dtype ? w : cast(w, y.dtype)));
}

/** The case's loss, and (accumulate) a later term Σ x·w2 on its first param. */
function lossOf(c: Case, w: Tensor, w2: Tensor, accumulate: boolean) {
  return (p: Params): Tensor => {
    const main = weighted(c.apply(p), w);
    if (!accumulate) return main;
    const first = p[Object.keys(c.params)[0]];
    const extra = sum(mul(first, w2));
    return add(main, extra.dtype === main.dtype ? extra : cast(extra, main.dtype));
  };
}

function refLoss(c: Case, v: Vals, w: number[], w2: number[], accumulate: boolean): number {
  const y = c.ref(v);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * w[i];
  if (accumulate) {
    const first = v[Object.keys(c.params)[0]];
    for (let i = 0; i < first.length; i++) s += first[i] * w2[i];
  }
  return s;
}

describe("differentiable math ops: gradients against float64 finite differences of a reference forward", () => {
  const rng = new Rng(0x5eed);
  for (const c of CASES) {
    for (const dtype of c.dtypes ?? (["f32", "f64"] as const)) {
      for (const accumulate of [false, true]) {
        it(`${c.name} (${dtype}${accumulate ? ", accumulated into" : ""})`, () =>
          scope(() => {
            const params: Params = {};
            for (const [name, { shape, gen }] of Object.entries(c.params)) {
              params[name] = tensor(
                gen(
                  rng,
                  shape.reduce((a, b) => a * b, 1),
                ),
                shape,
                { dtype },
              );
            }
            const vals: Vals = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, t.toArray()]));
            const y = c.apply(params);
            const yRef = c.ref(vals);
            // the forward agrees with the reference (f32: a few ulps; f16 round trip: its rounding)
            const fwdTol = c.dtypes ? 1e-3 : dtype === "f32" || y.dtype === "f32" ? 1e-6 : 1e-13;
            const yv = y.toArray();
            expect(yv.length).toBe(yRef.length);
            for (let i = 0; i < yv.length; i++) {
              if (!(Math.abs(yv[i] - yRef[i]) <= fwdTol * (1 + Math.abs(yRef[i])))) {
                throw new Error(`${c.name} forward [${i}]: ${yv[i]} vs ${yRef[i]}`);
              }
            }
            const wv = Array.from(randn(rng, y.size));
            const w = tensor(wv, y.shape, { dtype: y.dtype });
            const wRounded = w.toArray();
            const first = params[Object.keys(c.params)[0]];
            const w2 = tensor(randn(rng, first.size), first.shape, { dtype });
            const w2Rounded = w2.toArray();

            const { loss, grads } = valueAndGrad((p) => lossOf(c, w, w2, accumulate)(p as Params))(params, undefined);
            const want = refLoss(c, vals, wRounded, w2Rounded, accumulate);
            // the loss's size for its tolerance: Σ |y·w| (+ Σ |x·w2|)
            let size = yRef.reduce((a, v, i) => a + Math.abs(v * wRounded[i]), 0);
            if (accumulate) size += first.toArray().reduce((a, v, i) => a + Math.abs(v * w2Rounded[i]), 0);
            expect(Math.abs(loss - want)).toBeLessThanOrEqual(10 * fwdTol * (1 + size));

            for (const name of Object.keys(c.params)) {
              const g = (grads as Params)[name];
              expect(g.dtype).toBe(dtype);
              const analytic = g.toArray();
              const base = vals[name];
              const numeric = base.map((x, i) => {
                const h = 1e-6 * Math.max(1, Math.abs(x));
                const at = (xi: number) => {
                  const v = { ...vals, [name]: base.map((b, j) => (j === i ? xi : b)) };
                  return refLoss(c, v, wRounded, w2Rounded, accumulate);
                };
                return (at(x + h) - at(x - h)) / (2 * h);
              });
              const scale = Math.max(...numeric.map(Math.abs));
              expect(scale, "the case must have a non-zero gradient to check").toBeGreaterThan(0.01);
              const rtol = dtype === "f32" ? 2e-5 : 1e-7;
              for (let i = 0; i < numeric.length; i++) {
                const err = Math.abs(analytic[i] - numeric[i]);
                if (!(err <= rtol * (Math.abs(numeric[i]) + scale) + 1e-9)) {
                  throw new Error(
                    `${c.name} (${dtype}) d/d${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric[i]} (error ${err})`,
                  );
                }
              }
            }
          }));
      }
    }
  }

  it("the f64 ops also pass the shared gradCheck (finite differences of the library's own forward)", () =>
    scope(() => {
      const r = new Rng(41);
      const t = (shape: number[], gen: (rng: Rng, n: number) => number[]) =>
        tensor(
          gen(
            r,
            shape.reduce((a, b) => a * b, 1),
          ),
          shape,
          { dtype: "f64" },
        );
      const w = t([3, 4], normal());
      gradCheck({ x: t([3, 4], normal()) }, (p) => sum(mul(softmax(exp(p.x)), w)));
      gradCheck({ x: t([3, 4], positive), y: t([3, 4], awayFromZero) }, (p) =>
        sum(mul(logSoftmax(div(log(p.x), p.y)), w)),
      );
      gradCheck({ x: t([3, 4], clampInput) }, (p) => add(maxAbs(clamp(p.x, LO, HI)), sumSquares(p.x)));
      gradCheck({ x: t([3, 4], normal()) }, (p) => max(fma(p.x, w, p.x)));
    }));
});

describe("subgradients and edge cases", () => {
  const grad = (lossFn: (p: Params) => Tensor, x: Tensor): number[] =>
    ((valueAndGrad((p) => lossFn(p as Params))({ x }, undefined).grads as Params).x as Tensor).toArray();

  for (const dtype of ["f32", "f64"] as const) {
    it(`max and maxAbs: a tie sends all of the gradient to the first maximum; maxAbs carries the sign (${dtype})`, () =>
      scope(() => {
        const x = tensor([1, 3, -2, 3, 0.5], [5], { dtype });
        expect(max(x).toArray()).toEqual([3]);
        expect(grad((p) => max(p.x), x)).toEqual([0, 1, 0, 0, 0]);
        const y = tensor([1, -4, 3, 4, -4], [5], { dtype });
        expect(maxAbs(y).toArray()).toEqual([4]);
        expect(grad((p) => maxAbs(p.x), y)).toEqual([0, -1, 0, 0, 0]);
        // a scaled upstream gradient lands unchanged in size, and a second use adds to it
        expect(grad((p) => add(max(p.x), max(p.x)), x)).toEqual([0, 2, 0, 0, 0]);
        // all zeros: maxAbs is 0 with a zero (sign 0) gradient
        expect(grad((p) => maxAbs(p.x), tensor([0, 0, 0], [3], { dtype }))).toEqual([0, 0, 0]);
        // NaN: the value is NaN; max sends the gradient to the first NaN
        const n = tensor([1, Number.NaN, 5, Number.NaN], [4], { dtype });
        expect(max(n).toArray()[0]).toBeNaN();
        expect(grad((p) => max(p.x), n)).toEqual([0, 1, 0, 0]);
        expect(() => max(tensor([], [0], { dtype }))).toThrow("plait: max: argument x is empty (shape [0])");
        expect(maxAbs(tensor([], [0], { dtype })).toArray()).toEqual([0]);
      }));

    it(`clamp: gradient passes inside and on the bounds, is 0 where clamped, and passes NaN through (${dtype})`, () =>
      scope(() => {
        const x = tensor([-2, -1, 0, 1, 2, Number.NaN], [6], { dtype });
        expect(clamp(x, -1, 1).toArray()).toEqual([-1, -1, 0, 1, 1, Number.NaN]);
        expect(grad((p) => sum(clamp(p.x, -1, 1)), x)).toEqual([0, 1, 1, 1, 0, 1]);
        expect(() => clamp(x, 1, -1)).toThrow(/expected lo ≤ hi/);
      }));

    it(`softmax rows with NaN, +inf or only −inf come out all NaN (${dtype})`, () =>
      scope(() => {
        const inf = Number.POSITIVE_INFINITY;
        const x = tensor([1, Number.NaN, 2, 1, inf, 2, -inf, -inf, -inf, 0, -inf, 1], [4, 3], { dtype });
        const y = softmax(x).toArray();
        expect(y.slice(0, 9).every(Number.isNaN)).toBe(true);
        expect(y[9]).toBeCloseTo(1 / (1 + Math.E), 6);
        expect(y[10]).toBe(0);
        expect(logSoftmax(x).toArray().slice(0, 9).every(Number.isNaN)).toBe(true);
      }));
  }

  it("cast: the gradient of a half compute copy comes back in f32, and f64 → f16 is refused as before", () =>
    scope(() => {
      const x = tensor([1.5, -2, 0.25], [3]);
      const w = tensor([2, 3, -1], [3]);
      // x → f16 → f32: straight through
      expect(grad((p) => sum(mul(cast(cast(p.x, "bf16"), "f32"), w)), x)).toEqual([2, 3, -1]);
      // a bf16 param (a mixed-precision compute copy) gets an f32 gradient through cast
      const h = cast(x, "bf16");
      const g = (valueAndGrad((p: any) => sum(mul(cast(p.h, "f32"), w)))({ h }, undefined).grads as Params).h;
      expect(g.dtype).toBe("f32");
      expect(g.toArray()).toEqual([2, 3, -1]);
      expect(() => cast(tensor([1], [1], { dtype: "f64" }), "f16")).toThrow(/cast: f64 → f16 is not supported/);
      expect(() => cast([1] as never, "f32")).toThrow(/cast: argument t must be a Tensor, got an array/);
    }));

  it("reject integer dtypes by name", () =>
    scope(() => {
      const i = tensor([1, 2], [2], { dtype: "i32" });
      expect(() => exp(i)).toThrow("plait: exp: argument x has dtype i32, expected f32 or f64");
      expect(() => log(i)).toThrow("plait: log: argument x has dtype i32, expected f32 or f64");
      expect(() => softmax(i)).toThrow("plait: softmax: argument x has dtype i32, expected f32 or f64");
      expect(() => max(i)).toThrow("plait: max: argument x has dtype i32, expected f32 or f64");
      expect(() => div(i, i)).toThrow(/div: argument a has dtype i32/);
      expect(() => softmax(tensor(3, []))).toThrow(
        "plait: softmax: argument x must have at least 1 axis, got shape []",
      );
      expect(() => fma(tensor([1, 2]), tensor([1, 2]), tensor([1]))).toThrow(
        "plait: fma: argument c has shape [1], expected [2] like a",
      );
    }));
});
