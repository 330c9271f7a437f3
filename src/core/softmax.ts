// Row-wise softmax and log-softmax over the last axis (leading axes are the rows), f32.
import { COMPUTE_BOUND_MIN_ELEMENTS, checkArg, outLike } from "./elementwise.ts";
import { parallelFor } from "./parallel.ts";
import type { Tensor } from "./tensor.ts";

function rowwise(op: string, kernel: string, x: Tensor, out: Tensor | undefined): Tensor {
  const t = checkArg(op, "x", x, ["f32"]);
  if (t.ndim === 0) throw new RangeError(`plait: ${op}: argument x must have at least 1 axis, got shape []`);
  const o = outLike(op, t, out);
  const cols = t.shape[t.ndim - 1];
  const rows = cols === 0 ? 0 : t.size / cols;
  if (rows === 0) return o;
  const rowBytes = cols * 4;
  const xp = t.ptr;
  const yp = o.ptr;
  parallelFor(kernel, rows, (r, count) => [xp + r * rowBytes, yp + r * rowBytes, count, cols], {
    minElements: Math.ceil(COMPUTE_BOUND_MIN_ELEMENTS / cols),
    align: 1,
  });
  return o;
}

/** exp(x − max) / Σ exp(x − max) along the last axis, per row. */
export function softmax(x: Tensor, out?: Tensor): Tensor {
  return rowwise("softmax", "as.softmax_f32", x, out);
}

/** x − max − ln Σ exp(x − max) along the last axis, per row. */
export function logSoftmax(x: Tensor, out?: Tensor): Tensor {
  return rowwise("logSoftmax", "as.log_softmax_f32", x, out);
}
