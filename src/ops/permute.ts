import { shapeStr, Tensor } from "../core/tensor.ts";
import { checkInput } from "./check.ts";
import { normAxis, stridedCopy, stridesOf } from "./strided.ts";
import { tapeFor } from "./tape.ts";

/**
 * x with its axes reordered: out.shape[i] = x.shape[axes[i]] (numpy's transpose(x, axes),
 * torch's permute); `axes` lists every axis once, negative ones counting from the end. Any
 * dtype (a copy). Gradient: g permuted back by the inverse order.
 */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const op = "permute";
  checkInput(op, "x", x);
  if (!Array.isArray(axes) || axes.length !== x.ndim) {
    throw new RangeError(
      `plait: ${op}: argument axes must list each of the ${x.ndim} axes of x ${shapeStr(x.shape)} once, got ${JSON.stringify(axes)}`,
    );
  }
  const order = axes.map((a) => normAxis(op, a, x.shape));
  if (new Set(order).size !== order.length) {
    throw new RangeError(
      `plait: ${op}: argument axes ${JSON.stringify(axes)} repeats an axis; it must list each of the ${x.ndim} axes of x ${shapeStr(x.shape)} once`,
    );
  }
  const shape = order.map((a) => x.shape[a]);
  const out = new Tensor(shape, x.dtype);
  const xs = stridesOf(x.shape);
  stridedCopy(
    shape,
    x.data(),
    0,
    order.map((a) => xs[a]),
    out.data(),
    0,
    stridesOf(shape),
  );
  const tape = tapeFor(x);
  if (tape) {
    // g[i] (out's layout) goes to dx at the permuted position: walk g with dx's strides.
    tape.record(
      out,
      (g, sink) =>
        sink.assign(x, (dx) => {
          const ds = stridesOf(x.shape);
          stridedCopy(
            shape,
            g.data(),
            0,
            stridesOf(shape),
            dx.data(),
            0,
            order.map((a) => ds[a]),
          );
        }),
      [],
    );
  }
  return out;
}
