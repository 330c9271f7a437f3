import { CudaTensor } from "../core/device.ts";
import * as core from "../core/reduce.ts";
import { shapeStr, type Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { deviceReduceAll } from "./cuda.ts";
import { as } from "./kernels.ts";
import { type Axes, maxAxis, meanAxis, sumAxis } from "./reduceAxis.ts";
import { readScalar, scalar } from "./scalar.ts";
import { tapeFor } from "./tape.ts";

/**
 * Σ of all elements, as a scalar tensor of x's dtype (the SIMD kernels); or, given `axis` (one
 * axis or several, negative from the end) or `keepDims`, Σ along those axes (reduceAxis.ts:
 * float64 sums), the reduced axes dropped or kept with size 1.
 */
export function sum(x: Tensor, axis?: Axes, keepDims?: boolean): Tensor;
export function sum(x: CudaTensor): CudaTensor;
export function sum(x: Tensor | CudaTensor, axis?: Axes, keepDims = false): Tensor | CudaTensor {
  if (x instanceof CudaTensor) return deviceReduceAll("sum", x, axis, keepDims); // ops/cuda.ts
  if (axis !== undefined || keepDims) return sumAxis(x, axis, keepDims);
  return reduceAll("sum", x, 1);
}

/** Mean of all elements, as a scalar tensor of x's dtype (NaN for an empty x); along axes as sum does. */
export function mean(x: Tensor, axis?: Axes, keepDims?: boolean): Tensor;
export function mean(x: CudaTensor): CudaTensor;
export function mean(x: Tensor | CudaTensor, axis?: Axes, keepDims = false): Tensor | CudaTensor {
  if (x instanceof CudaTensor) return deviceReduceAll("mean", x, axis, keepDims); // ops/cuda.ts
  if (axis !== undefined || keepDims) return meanAxis(x, axis, keepDims);
  return reduceAll("mean", x, x?.size);
}

/** Σ x / n: the gradient is 1/n in every element. */
function reduceAll(op: string, x: Tensor, n: number): Tensor {
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  const out = scalar(core.sum(x) / n, dtype);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const v = readScalar(g) / n;
        if (dx.accumulate) as()[`add_scalar_${dtype}`](dx.out.ptr, v, dx.out.ptr, x.size);
        else dx.out.data().fill(v);
      },
      [],
    );
  }
  return out;
}

/** Σ x² over all elements, as a scalar tensor of x's dtype (0 for an empty x). Gradient: 2g · x. */
export function sumSquares(x: Tensor): Tensor {
  const op = "sumSquares";
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  const out = scalar(core.sumSquares(x), dtype);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(out, (g, sink) => sink.addScaled(x, 2 * readScalar(g), x), [x]);
  }
  return out;
}

/**
 * The largest element, as a scalar tensor of x's dtype; NaN if any element is NaN; throws on
 * an empty x. Gradient (a subgradient where the maximum is tied): all of g goes to the first
 * element (lowest flat index) that attains the maximum, or to the first NaN; the other tied
 * elements get 0. Given `axis` or `keepDims`, the maximum along those axes, with the same
 * gradient rule per output element (maxAxis in reduceAxis.ts).
 */
export function max(x: Tensor, axis?: Axes, keepDims = false): Tensor {
  if (axis !== undefined || keepDims) return maxAxis(x, axis, keepDims);
  return maxReduce("max", x, false);
}

/**
 * The largest |x|, as a scalar tensor of x's dtype; NaN if any element is NaN; 0 for an empty
 * x. Gradient: sign(x_i) · g at the first element i (lowest flat index) whose |x_i| attains the
 * maximum (or the first NaN, whose gradient is NaN), 0 elsewhere; all zero when the maximum is 0.
 */
export function maxAbs(x: Tensor): Tensor {
  return maxReduce("maxAbs", x, true);
}

function maxReduce(op: string, x: Tensor, abs: boolean): Tensor {
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  if (!abs && x.size === 0) throw new RangeError(`plait: ${op}: argument x is empty (shape ${shapeStr(x.shape)})`);
  const value = dtype === "f32" ? (abs ? core.maxAbs(x) : core.max(x)) : maxF64(x.data(), abs);
  const out = scalar(value, dtype);
  const tape = tapeFor(x);
  if (tape && x.size > 0) {
    const at = argFirst(x.data(), value, abs);
    const sign = abs ? Math.sign(x.data()[at]) : 1;
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        const ds = dx.out.data();
        if (!dx.accumulate) ds.fill(0);
        ds[at] += sign * readScalar(g);
      },
      [],
    );
  }
  return out;
}

/** max x (or max |x|: 0 when empty) of an f64 array; NaN if any element is NaN. */
function maxF64(xs: ArrayLike<number>, abs: boolean): number {
  let m = abs ? 0 : Number.NEGATIVE_INFINITY;
  for (let i = 0; i < xs.length; i++) {
    const v = abs ? Math.abs(xs[i]) : xs[i];
    if (Number.isNaN(v)) return Number.NaN;
    if (v > m) m = v;
  }
  return m;
}

/** The first index where x (or |x|) equals `value`, or the first NaN when value is NaN. */
function argFirst(xs: ArrayLike<number>, value: number, abs: boolean): number {
  const nan = Number.isNaN(value);
  for (let i = 0; i < xs.length; i++) {
    const v = abs ? Math.abs(xs[i]) : xs[i];
    if (nan ? Number.isNaN(v) : v === value) return i;
  }
  // value was computed from these elements (maxAbs's 0 comes back only when some |x| is 0)
  throw new Error(`plait: internal: no element equals the maximum ${value}`);
}
