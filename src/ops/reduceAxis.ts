import * as portable from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import { type Shape, shapeStr, sizeOf, Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { broadcastStrides, type Elements, normAxis, stridedCopy, stridesOf } from "./strided.ts";
import { tapeFor } from "./tape.ts";

// Reductions along axes (sum, mean, max, logSumExp, argmax), f32 and f64, as plain loops that
// accumulate in float64 and round once to x's dtype. Without an axis, sum/mean/max in reduce.ts
// reduce everything on the SIMD kernels instead.

// Math.exp and Math.log differ in the last bit between V8 and JavaScriptCore: deterministic mode
// (configure({ deterministic: true })) takes the portable ones, the same bits on every runtime.
const exp = (x: number) => (deterministic() ? portable.exp(x) : Math.exp(x));
const log = (x: number) => (deterministic() ? portable.log(x) : Math.log(x));

/** One axis or several; negative axes count from the end. */
export type Axes = number | readonly number[];

type Kind = "sum" | "mean" | "max" | "logSumExp";

interface Plan {
  /** x's shape with the reduced axes set to 1. */
  kept: Shape;
  /** The output shape: `kept`, or without the reduced axes. */
  out: Shape;
  /** Elements reduced into each output element. */
  n: number;
}

function plan(op: string, x: Tensor, axis: Axes | undefined, keepDims: boolean): Plan {
  if (typeof keepDims !== "boolean") {
    throw new TypeError(`plait: ${op}: argument keepDims must be a boolean, got ${typeof keepDims}`);
  }
  const list = axis === undefined ? x.shape.map((_d, i) => i) : typeof axis === "number" ? [axis] : axis;
  if (!Array.isArray(list)) {
    throw new TypeError(`plait: ${op}: argument axis must be an integer or an array of integers, got ${typeof axis}`);
  }
  const axes = new Set<number>();
  for (const a of list) {
    const k = normAxis(op, a, x.shape);
    if (axes.has(k)) throw new RangeError(`plait: ${op}: axis ${a} appears twice in [${list.join(", ")}]`);
    axes.add(k);
  }
  const kept = x.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const out = keepDims ? kept : x.shape.filter((_d, i) => !axes.has(i));
  let n = 1;
  for (const i of axes) n *= x.shape[i];
  return { kept, out, n };
}

/** For every flat index of x, the flat index of the output element it reduces into. */
function outIndex(x: Tensor, kept: Shape): Int32Array {
  const size = sizeOf(kept);
  const ids = new Int32Array(size);
  for (let i = 0; i < size; i++) ids[i] = i;
  const map = new Int32Array(x.size);
  stridedCopy(x.shape, ids, 0, broadcastStrides(kept, x.shape), map, 0, stridesOf(x.shape));
  return map;
}

/**
 * Σ of x along `axis` (one axis or several; negative from the end), in x's dtype (f32 or
 * f64), summed in float64. The reduced axes are dropped, or kept with size 1 when `keepDims`.
 * Gradient: g repeated along the reduced axes.
 */
export function sumAxis(x: Tensor, axis: Axes | undefined, keepDims: boolean): Tensor {
  return reduce("sum", x, axis, keepDims);
}

/** The mean along `axis` (see sumAxis): NaN where the reduced axes are empty. Gradient: g / n repeated. */
export function meanAxis(x: Tensor, axis: Axes | undefined, keepDims: boolean): Tensor {
  return reduce("mean", x, axis, keepDims);
}

/**
 * The largest element along `axis` (see sumAxis); NaN where a reduced slice holds a NaN;
 * throws when the reduced axes are empty. Gradient: all of g goes to one element per output,
 * the first that attains the maximum in row-major order (lowest flat index; the first NaN
 * when there is one), a subgradient at ties; the other tied elements get 0.
 */
export function maxAxis(x: Tensor, axis: Axes | undefined, keepDims: boolean): Tensor {
  return reduce("max", x, axis, keepDims);
}

/**
 * log Σ exp(x) along `axis` (default: every axis; keepDims as in sum), stable: the slice's
 * maximum m is taken out first, m + log Σ exp(x − m) (with m = 0 when it is ±inf, so an all
 * −inf slice gives −inf and a +inf gives +inf). Gradient: g · exp(x − out), the softmax.
 */
export function logSumExp(x: Tensor, axis?: Axes, keepDims = false): Tensor {
  return reduce("logSumExp", x, axis, keepDims);
}

function reduce(op: Kind, x: Tensor, axis: Axes | undefined, keepDims: boolean): Tensor {
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  const p = plan(op, x, axis, keepDims);
  const size = sizeOf(p.kept);
  if (op === "max" && p.n === 0 && size > 0) {
    throw new RangeError(
      `plait: ${op}: the reduced axes of x ${shapeStr(x.shape)} are empty; a maximum needs elements`,
    );
  }
  const xs = x.data();
  const out = new Tensor(p.out, dtype);
  const ys = out.data();
  if (op === "sum" || op === "mean") {
    const acc = new Float64Array(size);
    stridedCopy(x.shape, xs, 0, stridesOf(x.shape), acc, 0, broadcastStrides(p.kept, x.shape), true);
    for (let o = 0; o < size; o++) ys[o] = op === "mean" ? acc[o] / p.n : acc[o];
  }
  let arg: Int32Array | undefined;
  if (op === "max" || op === "logSumExp") {
    const map = outIndex(x, p.kept);
    const [m, at] = maxima(xs, map, size);
    arg = at;
    if (op === "max") ys.set(m);
    else {
      const s = new Float64Array(size);
      for (let o = 0; o < size; o++) if (!Number.isFinite(m[o])) m[o] = Number.isNaN(m[o]) ? m[o] : 0;
      for (let i = 0; i < xs.length; i++) s[map[i]] += exp(xs[i] - m[map[i]]);
      for (let o = 0; o < size; o++) ys[o] = m[o] + log(s[o]);
    }
  }
  const tape = tapeFor(x);
  if (!tape) return out;
  const repeat = (g: Tensor, dx: Tensor) =>
    stridedCopy(x.shape, g.data(), 0, broadcastStrides(p.kept, x.shape), dx.data(), 0, stridesOf(x.shape));
  if (op === "sum" || op === "mean") {
    tape.record(
      out,
      (g, sink) =>
        sink.assign(x, (dx) => {
          repeat(g, dx);
          if (op === "mean") {
            const d = dx.data();
            for (let i = 0; i < d.length; i++) d[i] /= p.n;
          }
        }),
      [],
    );
  } else if (op === "max") {
    const at = arg!;
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const d = dx.out.data();
        if (!dx.accumulate) d.fill(0);
        const gs = g.data();
        for (let o = 0; o < at.length; o++) if (at[o] >= 0) d[at[o]] += gs[o];
      },
      [],
    );
  } else {
    tape.record(
      out,
      (g, sink) =>
        sink.assign(x, (dx) => {
          repeat(g, dx);
          const d = dx.data();
          const e = new Float64Array(x.size);
          repeatInto(Float64Array.from(out.data()), e);
          const xv = x.data();
          for (let i = 0; i < d.length; i++) d[i] *= exp(xv[i] - e[i]);
        }),
      [x, out],
    );
  }
  return out;

  function repeatInto(src: Elements, dst: Float64Array): void {
    stridedCopy(x.shape, src, 0, broadcastStrides(p.kept, x.shape), dst, 0, stridesOf(x.shape));
  }
}

/** Per output element: the maximum (NaN if any NaN) and the flat index of its first occurrence (-1 if empty). */
function maxima(xs: Elements, map: Int32Array, size: number): [Float64Array, Int32Array] {
  const m = new Float64Array(size).fill(Number.NEGATIVE_INFINITY);
  const at = new Int32Array(size).fill(-1);
  for (let i = 0; i < xs.length; i++) {
    const o = map[i];
    const v = xs[i];
    if (at[o] < 0 || v > m[o] || (Number.isNaN(v) && !Number.isNaN(m[o]))) {
      m[o] = v;
      at[o] = i;
    }
  }
  return [m, at];
}

/**
 * The index of the largest element along `axis` (the first one at ties, or the first NaN), as
 * an i32 tensor without that axis (or with it at size 1 when `keepDims`). Not differentiable:
 * a tensor valueAndGrad is recording is refused (an index has no gradient; compute it outside
 * the loss, or on a value that does not depend on the params).
 */
export function argmax(x: Tensor, axis: number, keepDims = false): Tensor {
  const op = "argmax";
  checkInput(op, "x", x);
  checkDTypeIn(op, "x", x, ["f32", "f64", "f16", "bf16", "i32"]);
  if (tapeFor(x)) {
    throw new TypeError(
      `plait: ${op}: argument x (${x.describe()}) is being recorded by valueAndGrad's tape, but argmax is not differentiable (it returns indices); compute it outside the loss function`,
    );
  }
  const k = normAxis(op, axis, x.shape);
  const p = plan(op, x, k, keepDims);
  const size = sizeOf(p.kept);
  if (p.n === 0 && size > 0) {
    throw new RangeError(`plait: ${op}: axis ${axis} of x ${shapeStr(x.shape)} is empty; argmax needs elements`);
  }
  const src = x.dtype === "f16" || x.dtype === "bf16" ? x.toArray() : x.data();
  const [, at] = maxima(src, outIndex(x, p.kept), size);
  const out = new Tensor(p.out, "i32");
  const ys = out.data();
  const stride = stridesOf(x.shape)[k];
  const dim = x.shape[k];
  for (let o = 0; o < size; o++) ys[o] = Math.floor(at[o] / stride) % dim;
  return out;
}
