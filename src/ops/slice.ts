import { shapeStr, Tensor } from "../core/tensor.ts";
import { checkInput } from "./check.ts";
import { stridedCopy, stridesOf } from "./strided.ts";
import { tapeFor } from "./tape.ts";

/**
 * The block of x from `starts` (inclusive) to `ends` (exclusive) on each axis, numpy's
 * x[s0:e0, s1:e1, ...]: both list leading axes (a shorter list, or an `ends` entry left
 * undefined, takes the rest of that axis); negative values count from the axis's end. A range
 * must lie within the axis (0 ≤ start ≤ end ≤ size after that): no clamping. Any dtype.
 * Gradient: g in the block, 0 elsewhere.
 */
export function slice(x: Tensor, starts: readonly number[], ends?: readonly (number | undefined)[]): Tensor {
  const op = "slice";
  checkInput(op, "x", x);
  for (const [arg, list] of [
    ["starts", starts],
    ["ends", ends ?? []],
  ] as const) {
    if (!Array.isArray(list) || list.length > x.ndim) {
      throw new RangeError(
        `plait: ${op}: argument ${arg} must be an array of at most ${x.ndim} integers (one per axis of x ${shapeStr(x.shape)}), got ${JSON.stringify(list)}`,
      );
    }
  }
  const from: number[] = [];
  const shape: number[] = [];
  for (let ax = 0; ax < x.ndim; ax++) {
    const dim = x.shape[ax];
    const s = at(op, "starts", starts[ax] ?? 0, dim);
    const e = at(op, "ends", ends?.[ax] ?? dim, dim);
    if (!(s >= 0 && s <= e && e <= dim)) {
      throw new RangeError(
        `plait: ${op}: axis ${ax}: range [${starts[ax] ?? 0}, ${ends?.[ax] ?? dim}) is not within [0, ${dim}] of x ${shapeStr(x.shape)} (rule: 0 ≤ start ≤ end ≤ size, negatives count from the end)`,
      );
    }
    from.push(s);
    shape.push(e - s);
  }
  const xs = stridesOf(x.shape);
  const base = from.reduce((o, s, ax) => o + s * xs[ax], 0);
  const out = new Tensor(shape, x.dtype);
  stridedCopy(shape, x.data(), base, xs, out.data(), 0, stridesOf(shape));
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) =>
        sink.assign(x, (dx) => {
          dx.data().fill(0);
          stridedCopy(shape, g.data(), 0, stridesOf(shape), dx.data(), base, xs);
        }),
      [],
    );
  }
  return out;
}

function at(op: string, arg: string, v: unknown, dim: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(`plait: ${op}: argument ${arg} has ${String(v)}, expected integers`);
  }
  return v < 0 ? v + dim : v;
}
