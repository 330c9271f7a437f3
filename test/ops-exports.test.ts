// What "plait" exports at the top level differentiates, and the raw kernels under `core.*`
// refuse a tensor that valueAndGrad's tape is recording instead of giving a zero gradient.
import { describe, expect, it } from "vitest";
import * as plait from "../src/index.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";

type Params = Record<string, Tensor>;

const gradOf = (lossFn: (p: Params) => Tensor, params: Params): Params =>
  plait.valueAndGrad((p) => lossFn(p as Params))(params, undefined).grads as Params;

const X = [0.5, -1.25, 2, 0.75, -0.3, 1.5]; // [2, 3]; no ties in value or |value|
const W = [0.7, -1.1, 0.4, 1.3, -0.6, 0.9]; // upstream weights, so every output element counts
const C = [1.5, -0.8, 2.5, 0.6, -1.7, 1.2]; // a constant operand

function softmaxRows(x: number[], cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length; r += cols) {
    const row = x.slice(r, r + cols);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / s));
  }
  return out;
}

function perRow(x: number[], cols: number, f: (row: number[], r: number) => number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length; r += cols) out.push(...f(x.slice(r, r + cols), r / cols));
  return out;
}

/**
 * Every top-level math name: how to call it on the param x (and constant c), and d(Σ w·y)/dx in
 * float64 closed form. Scalar results are weighted by w[0].
 */
const MATH: Record<string, { call: (f: any, x: Tensor, c: Tensor) => Tensor; grad: (x: number[]) => number[] }> = {
  exp: { call: (f, x) => f(x), grad: (x) => x.map((v, i) => W[i] * Math.exp(v)) },
  log: {
    call: (f, x) => f(plait.mul(x, x)), // log(x²): positive input for any x
    grad: (x) => x.map((v, i) => (2 * W[i]) / v),
  },
  div: { call: (f, x, c) => f(c, x), grad: (x) => x.map((v, i) => (-W[i] * C[i]) / (v * v)) },
  fma: { call: (f, x, c) => f(x, c, x), grad: (x) => x.map((_, i) => W[i] * (C[i] + 1)) },
  clamp: { call: (f, x) => f(x, -1, 1), grad: (x) => x.map((v, i) => (v >= -1 && v <= 1 ? W[i] : 0)) },
  softmax: {
    call: (f, x) => f(x),
    grad: (x) => {
      const y = softmaxRows(x, 3);
      return perRow(y, 3, (row, r) => {
        const w = W.slice(3 * r, 3 * r + 3);
        const dot = row.reduce((a, v, j) => a + v * w[j], 0);
        return row.map((v, j) => v * (w[j] - dot));
      });
    },
  },
  logSoftmax: {
    call: (f, x) => f(x),
    grad: (x) => {
      const y = softmaxRows(x, 3);
      return perRow(y, 3, (row, r) => {
        const w = W.slice(3 * r, 3 * r + 3);
        const s = w.reduce((a, b) => a + b, 0);
        return row.map((v, j) => w[j] - v * s);
      });
    },
  },
  max: { call: (f, x) => f(x), grad: (x) => x.map((v) => (v === Math.max(...x) ? W[0] : 0)) },
  maxAbs: {
    call: (f, x) => f(x),
    grad: (x) => {
      const m = Math.max(...x.map(Math.abs));
      return x.map((v) => (Math.abs(v) === m ? Math.sign(v) * W[0] : 0));
    },
  },
  sumSquares: { call: (f, x) => f(x), grad: (x) => x.map((v) => 2 * v * W[0]) },
  cast: { call: (f, x) => plait.cast(f(x, "f64"), "f32"), grad: () => W.slice() },
};

describe("the top-level math names differentiate", () => {
  it("the motivating case: Σ exp(w ⊙ w) has gradient 2w · exp(w²), not zeros", () =>
    scope(() => {
      const w = tensor([0.5, -1, 0.25]);
      const g = gradOf((q) => plait.sum(plait.exp(plait.mul(q.w, q.w))), { w }).w.toArray();
      const want = [0.5, -1, 0.25].map((v) => 2 * v * Math.exp(v * v));
      for (let i = 0; i < 3; i++) expect(g[i]).toBeCloseTo(want[i], 5);
    }));

  for (const [name, { call, grad }] of Object.entries(MATH)) {
    it(`plait.${name}: a non-zero gradient that matches the closed form`, () =>
      scope(() => {
        const f = (plait as Record<string, unknown>)[name];
        expect(typeof f, `plait.${name} is exported`).toBe("function");
        const x = tensor(X, [2, 3]);
        const c = tensor(C, [2, 3]);
        const g = gradOf(
          (p) => {
            const y = call(f, p.x, c);
            const w = y.size === 1 ? tensor([W[0]], y.shape as number[]) : tensor(W, y.shape as number[]);
            return plait.sum(plait.mul(y, w));
          },
          { x },
        ).x.toArray();
        const want = grad(X.map(Math.fround));
        expect(g.some((v) => v !== 0)).toBe(true);
        for (let i = 0; i < want.length; i++) {
          if (!(Math.abs(g[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])))) {
            throw new Error(`plait.${name}: d/dx[${i}] is ${g[i]}, expected ${want[i]}`);
          }
        }
      }));
  }

  it("the in-place and boolean kernels left the top level (they stay under core.*)", () => {
    for (const name of ["axpy", "allFinite"]) {
      expect(name in plait, `plait.${name}`).toBe(false);
      expect(typeof (plait.core as Record<string, unknown>)[name], `plait.core.${name}`).toBe("function");
    }
  });
});

/** Each core.* function that takes a tensor: arguments with the taped x in one slot, and that slot's name. */
function coreCalls(x: Tensor, c: Tensor, c32: Tensor): Record<string, [args: unknown[], arg: string]> {
  return {
    relu: [[x], "x"],
    gelu: [[x], "x"],
    tanh: [[x], "x"],
    sigmoid: [[x], "x"],
    reluBackward: [[c, x], "dy"],
    geluBackward: [[x, c], "x"],
    tanhBackward: [[x, c], "y"],
    sigmoidBackward: [[c, x], "dy"],
    add: [[c, x], "b"],
    sub: [[x, c], "a"],
    mul: [[c, x], "b"],
    div: [[c, x], "b"],
    scale: [[x, 2], "x"],
    axpy: [[2, x, c], "x"],
    fma: [[c, c, x], "c"],
    cast: [[x, "f64"], "t"],
    unscaleAndCheckFinite: [[x, 2], "t"],
    clamp: [[x, -1, 1], "x"],
    matmul: [[x, c32], "a"],
    sum: [[x], "x"],
    mean: [[x], "x"],
    sumSquares: [[x], "x"],
    max: [[x], "x"],
    maxAbs: [[x], "x"],
    allFinite: [[x], "x"],
    softmax: [[x], "x"],
    logSoftmax: [[x], "x"],
    exp: [[x], "x"],
    log: [[x], "x"],
  };
}
/** core.* functions that take no tensor. */
const NO_TENSOR_INPUT = ["full", "gemmKernel", "ones"];

describe("core.* kernels refuse a taped input", () => {
  const refusal = (name: string, arg: string) =>
    new RegExp(
      `^plait: core\\.${name}: argument ${arg.replace(".", "\\.")} is being recorded by valueAndGrad's tape, but core\\.${name} is not differentiable: \\S`,
    );

  it("every core function is covered by this test", () => {
    const names = Object.entries(plait.core)
      .filter(([, v]) => typeof v === "function")
      .map(([k]) => k)
      .sort();
    const covered = [...Object.keys(coreCalls(null as never, null as never, null as never)), ...NO_TENSOR_INPUT].sort();
    expect(names).toEqual(covered);
  });

  for (const name of Object.keys(coreCalls(null as never, null as never, null as never))) {
    it(`core.${name} throws on a taped argument, naming itself and what to use`, () =>
      scope(() => {
        const x = tensor(X, [2, 3]);
        const c = tensor(C, [2, 3]);
        const c32 = tensor(C, [3, 2]);
        const before = x.toArray();
        const fn = (plait.core as Record<string, (...a: unknown[]) => unknown>)[name];
        let thrown: unknown;
        gradOf(
          (p) => {
            const [args, arg] = coreCalls(p.x, c, c32)[name];
            try {
              fn(...args);
            } catch (e) {
              thrown = e;
              expect((e as Error).message).toMatch(refusal(name, arg));
            }
            return plait.sum(p.x);
          },
          { x },
        );
        expect(thrown, `core.${name} did not throw`).toBeInstanceOf(TypeError);
        expect(x.toArray()).toEqual(before); // refused before it ran (axpy, unscale would write)
        // the same call outside valueAndGrad runs
        const [args] = coreCalls(x, c, c32)[name];
        expect(() => fn(...args)).not.toThrow();
      }));
  }

  it("the message for the differentiable names says which plait op to use", () =>
    scope(() => {
      const x = tensor(X, [2, 3]);
      gradOf(
        (p) => {
          expect(() => plait.core.exp(p.x)).toThrow(
            "plait: core.exp: argument x is being recorded by valueAndGrad's tape, but core.exp is not differentiable: use exp from plait",
          );
          expect(() => plait.core.max(p.x)).toThrow(
            /core\.max is not differentiable: use max from plait \(a scalar tensor\)/,
          );
          return plait.sum(p.x);
        },
        { x },
      );
    }));

  it("taped tensors in out buffers and options objects are refused too; intermediates count as taped", () =>
    scope(() => {
      const x = tensor(X, [2, 3]);
      const bias = tensor([1, 2]);
      const c = tensor(C, [2, 3]);
      const c32 = tensor(C, [3, 2]);
      gradOf(
        (p) => {
          expect(() => plait.core.exp(c, p.x)).toThrow(/^plait: core\.exp: argument out is being recorded/);
          expect(() => plait.core.matmul(c, c32, { bias: p.bias })).toThrow(
            /^plait: core\.matmul: argument opts\.bias is being recorded .* use matmul or linear from plait/,
          );
          expect(() => plait.core.matmul(c, c32, { bias: tensor([1, 2]) })).not.toThrow();
          const h = plait.relu(p.x); // an intermediate that depends on the params
          expect(() => plait.core.tanh(h)).toThrow(/^plait: core\.tanh: argument x is being recorded/);
          return plait.add(plait.sum(p.x), plait.sum(p.bias));
        },
        { x, bias },
      );
    }));

  it("constants inside the loss function, tensors after it, and after a throw are accepted", () =>
    scope(() => {
      const x = tensor(X, [2, 3]);
      const c = tensor(C, [2, 3]);
      gradOf(
        (p) => {
          expect(plait.core.exp(c).toArray()[0]).toBeCloseTo(Math.exp(C[0]), 5); // not taped: fine
          return plait.sum(p.x);
        },
        { x },
      );
      expect(plait.core.sum(x)).toBeCloseTo(
        X.reduce((a, b) => a + b, 0),
        5,
      );
      expect(() => gradOf(() => plait.core.exp(x), { x })).toThrow(/core\.exp: argument x is being recorded/);
      expect(plait.core.exp(x).size).toBe(6); // the tape is gone after the throw
    }));

  it("a nested valueAndGrad: the outer tape's tensors are refused inside the inner call", () =>
    scope(() => {
      const x = tensor(X, [2, 3]);
      const y = tensor(C, [2, 3]);
      gradOf(
        (p) => {
          gradOf(
            (q) => {
              expect(() => plait.core.exp(p.x)).toThrow(/core\.exp: argument x is being recorded/);
              expect(() => plait.core.exp(q.y)).toThrow(/core\.exp: argument x is being recorded/);
              return plait.sum(q.y);
            },
            { y },
          );
          expect(() => plait.core.exp(p.x)).toThrow(/core\.exp: argument x is being recorded/);
          return plait.sum(p.x);
        },
        { x },
      );
      expect(() => plait.core.exp(x)).not.toThrow();
    }));
});
