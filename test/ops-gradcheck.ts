// Shared by the ops tests: central finite differences in float64 against valueAndGrad, and
// seeded random data. Not a test file itself (vitest collects *.test.ts only).
import { expect } from "vitest";
import type { DType } from "../src/core/dtype.ts";
import type { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { readScalar } from "../src/ops/scalar.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";

export type Params = Record<string, Tensor>;

/** Seeded normal(0, std) values. */
export function randn(rng: Rng, n: number, std = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

export function randTensor(rng: Rng, shape: number[], dtype: DType = "f64", std = 1): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  return tensor(randn(rng, n, std), shape, { dtype });
}

export interface GradCheckOptions {
  /** Step of the central difference. */
  h?: number;
  /** |analytic − numeric| ≤ atol + rtol · |numeric| for every element. */
  rtol?: number;
  atol?: number;
}

/**
 * Checks valueAndGrad(lossFn) on f64 params against central differences
 * (f(p + h) − f(p − h)) / 2h of lossFn itself, element by element. With h = 1e-6 in f64 the
 * truncation error is O(h²) ≈ 1e-12 and the rounding error about eps·|f|/h ≈ 1e-10, so the
 * default tolerance (1e-6 relative, 1e-8 absolute) leaves a wide margin and still catches any
 * wrong term.
 */
export function gradCheck(params: Params, lossFn: (p: Params) => Tensor, opts: GradCheckOptions = {}): void {
  const { h = 1e-6, rtol = 1e-6, atol = 1e-8 } = opts;
  const step = valueAndGrad((p) => lossFn(p as Params));
  const { loss, grads } = step(params, undefined);
  expect(loss).toBeCloseTo(evalLoss(params, lossFn), 12);
  for (const [name, p] of Object.entries(params)) {
    const g = (grads as Params)[name];
    expect(g.shape).toEqual(p.shape);
    expect(g.dtype).toBe(p.dtype);
    const analytic = g.toArray();
    const numeric = numericGrad(params, name, lossFn, h);
    for (let i = 0; i < numeric.length; i++) {
      const err = Math.abs(analytic[i] - numeric[i]);
      if (!(err <= atol + rtol * Math.abs(numeric[i]))) {
        throw new Error(`gradient of ${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric[i]} (error ${err})`);
      }
    }
    g.dispose();
  }
}

/** d lossFn / d params[name], by central differences in the params' own dtype. */
export function numericGrad(params: Params, name: string, lossFn: (p: Params) => Tensor, h: number): Float64Array {
  const data = params[name].data();
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    data[i] = x + h;
    const up = evalLoss(params, lossFn);
    data[i] = x - h;
    const down = evalLoss(params, lossFn);
    data[i] = x;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

export const evalLoss = (params: Params, lossFn: (p: Params) => Tensor): number =>
  scope(() => readScalar(lossFn(params)));

/** Float32 rounding of a float64 array (the exact f32 result of one correctly rounded op). */
export const f32 = (a: ArrayLike<number>): number[] => Array.from(a, (v) => Math.fround(v));

/** Sizes that reach every SIMD tail: none, one, under a vector, one vector, one over, odd, long. */
export const TAIL_SIZES = [0, 1, 3, 4, 5, 17, 1023];

/** Throws at the first i where |actual[i] − expected[i]| > tol(expected[i]) (NaN matches NaN). */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: (expected: number) => number,
  what = "",
): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= tol(e))) throw new Error(`${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol(e)})`);
  }
}
