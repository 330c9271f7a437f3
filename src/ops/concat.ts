import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import { checkInput } from "./check.ts";
import { normAxis, stridedCopy, stridesOf } from "./strided.ts";
import { type Tape, tapeFor } from "./tape.ts";

/**
 * The tensors of `xs` joined along `axis` (negative counts from the end): they have one dtype
 * (any) and equal sizes on every other axis. Gradient: each input gets its slice of g.
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  const op = "concat";
  const list = checkList(op, xs);
  const first = list[0];
  if (first.ndim === 0)
    throw new RangeError(`plait: ${op}: argument xs[0] is a scalar (shape []); concat needs an axis`);
  const k = normAxis(op, axis, first.shape);
  for (const [i, x] of list.entries()) {
    if (x.ndim !== first.ndim || x.shape.some((d, ax) => ax !== k && d !== first.shape[ax])) {
      throw new RangeError(
        `plait: ${op}: argument xs[${i}] has shape ${shapeStr(x.shape)}, xs[0] has ${shapeStr(first.shape)}; rule: equal on every axis but the concat axis ${k}`,
      );
    }
  }
  const shape = first.shape.map((d, ax) => (ax === k ? list.reduce((s, x) => s + x.shape[k], 0) : d));
  return join(list, shape, k, (x) => x.shape);
}

/**
 * The tensors of `xs` (one dtype, one shape) stacked along a new axis `axis` of the result (in
 * [−(ndim+1), ndim], negative counting from the end): stack([a, b], 0) has shape [2, ...a.shape].
 * Gradient: each input gets its slice of g.
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  const op = "stack";
  const list = checkList(op, xs);
  const first = list[0];
  for (const [i, x] of list.entries()) {
    if (x.ndim !== first.ndim || x.shape.some((d, ax) => d !== first.shape[ax])) {
      throw new RangeError(
        `plait: ${op}: argument xs[${i}] has shape ${shapeStr(x.shape)}, xs[0] has ${shapeStr(first.shape)}; rule: every tensor has the same shape`,
      );
    }
  }
  const k = normAxis(op, axis, [...first.shape, list.length]); // an axis of the result
  const shape = [...first.shape.slice(0, k), list.length, ...first.shape.slice(k)];
  const unit = [...first.shape.slice(0, k), 1, ...first.shape.slice(k)];
  return join(list, shape, k, () => unit);
}

function checkList(op: string, xs: readonly Tensor[]): readonly Tensor[] {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new TypeError(
      `plait: ${op}: argument xs must be a non-empty array of tensors, got ${Array.isArray(xs) ? "[]" : typeof xs}`,
    );
  }
  for (const [i, x] of xs.entries()) {
    checkInput(op, `xs[${i}]`, x);
    if (x.dtype !== xs[0].dtype) {
      throw new TypeError(`plait: ${op}: argument xs[${i}] has dtype ${x.dtype}, expected ${xs[0].dtype} like xs[0]`);
    }
  }
  return xs;
}

/** Copies each input (seen with shape `view(x)`) into its block of a new tensor along axis k. */
function join(list: readonly Tensor[], shape: Shape, k: number, view: (x: Tensor) => Shape): Tensor {
  const out = new Tensor(shape, list[0].dtype);
  const os = stridesOf(shape);
  const offsets: number[] = [];
  let at = 0;
  for (const x of list) {
    const v = view(x);
    offsets.push(at * os[k]);
    stridedCopy(v, x.data(), 0, stridesOf(v), out.data(), at * os[k], os);
    at += v[k];
  }
  let tape: Tape | null = null;
  for (const x of list) tape ??= tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        for (const [i, x] of list.entries()) {
          const v = view(x);
          sink.assign(x, (dx) => stridedCopy(v, g.data(), offsets[i], os, dx.data(), 0, stridesOf(v)));
        }
      },
      [],
    );
  }
  return out;
}
