// Shared plumbing of the elementwise, reduction and softmax ops: argument checks that name the
// op and the argument, output allocation, and the threaded kernel call.
import { bytesOf, type DType } from "./dtype.ts";
import { parallelFor } from "./parallel.ts";
import { checkTensor, shapeStr, Tensor } from "./tensor.ts";

/**
 * Below this many elements a compute-bound kernel (exp, log, tanh, sigmoid, gelu, softmax:
 * a few ns per element) runs on the calling thread alone; memory-bound ones use parallelFor's
 * default threshold (PARALLEL_MIN_ELEMENTS).
 */
export const COMPUTE_BOUND_MIN_ELEMENTS = 1 << 14;

/** Checks that `x` is a Tensor of one of `dtypes`; returns it typed. */
export function checkArg(op: string, arg: string, x: unknown, dtypes: readonly DType[]): Tensor {
  const t = checkTensor(op, arg, x);
  if (!dtypes.includes(t.dtype)) {
    throw new TypeError(`plait: ${op}: argument ${arg} has dtype ${t.dtype}; ${op} supports ${dtypes.join(", ")}`);
  }
  return t;
}

/** Checks that `x` is a Tensor with the dtype and shape of `ref` (named `refArg`). */
export function checkLike(op: string, arg: string, x: unknown, refArg: string, ref: Tensor): Tensor {
  const t = checkTensor(op, arg, x);
  if (t.dtype !== ref.dtype) {
    throw new TypeError(`plait: ${op}: argument ${arg} has dtype ${t.dtype}, expected ${ref.dtype} like ${refArg}`);
  }
  if (t.shape.length !== ref.shape.length || t.shape.some((d, i) => d !== ref.shape[i])) {
    throw new RangeError(
      `plait: ${op}: argument ${arg} has shape ${shapeStr(t.shape)}, expected ${shapeStr(ref.shape)} like ${refArg}`,
    );
  }
  return t;
}

/** `out` checked against `ref`, or a new tensor of ref's shape and dtype. */
export function outLike(op: string, ref: Tensor, out: Tensor | undefined): Tensor {
  return out === undefined ? new Tensor(ref.shape, ref.dtype) : checkLike(op, "out", out, "the input", ref);
}

/**
 * Runs elementwise kernel `fn` (e.g. "as.add_f32") over `n` elements, split across the pool
 * when n is large. Tensor arguments become pointers that advance with each thread's range,
 * numbers pass unchanged, and the element count comes last.
 */
export function runElementwise(fn: string, args: readonly (Tensor | number)[], n: number, minElements?: number): void {
  if (n === 0) return;
  const ptrs = args.map((a) => (typeof a === "number" ? a : a.ptr));
  const strides = args.map((a) => (typeof a === "number" ? 0 : bytesOf(a.dtype)));
  parallelFor(fn, n, (start, count) => [...ptrs.map((p, i) => p + start * strides[i]), count], { minElements });
}
