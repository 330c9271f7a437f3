import type { DType } from "../core/dtype.ts";
import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";

// Argument checks shared by the ops. Every message names the op, the argument, what was
// expected and what came.

export function checkTensor(op: string, arg: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`plait: ${op}: argument ${arg} must be a Tensor, got ${describe(t)}`);
  return t;
}

/** Checks that `t` has one of `dtypes`; returns its dtype. */
export function checkDTypeIn<D extends DType>(op: string, arg: string, t: Tensor, dtypes: readonly D[]): D {
  if (!(dtypes as readonly DType[]).includes(t.dtype)) {
    throw new TypeError(`plait: ${op}: argument ${arg} has dtype ${t.dtype}, expected ${dtypes.join(" or ")}`);
  }
  return t.dtype as D;
}

export function checkSameDType(op: string, arg: string, t: Tensor, refArg: string, ref: Tensor): void {
  if (t.dtype !== ref.dtype) {
    throw new TypeError(`plait: ${op}: argument ${arg} has dtype ${t.dtype}, expected ${ref.dtype} like ${refArg}`);
  }
}

export function checkSameShape(op: string, arg: string, t: Tensor, refArg: string, ref: Tensor): void {
  if (!sameShape(t.shape, ref.shape)) {
    throw new RangeError(
      `plait: ${op}: argument ${arg} has shape ${shapeStr(t.shape)}, expected ${shapeStr(ref.shape)} like ${refArg}`,
    );
  }
}

export function checkRank(op: string, arg: string, t: Tensor, ndim: number): void {
  if (t.ndim !== ndim) {
    throw new RangeError(`plait: ${op}: argument ${arg} must have ${ndim} dimensions, got shape ${shapeStr(t.shape)}`);
  }
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rows × columns of a tensor seen as a matrix over its last axis ([] and [n] are one row). */
export function asMatrix(t: Tensor): [rows: number, cols: number] {
  if (t.ndim === 0) return [1, 1];
  let rows = 1;
  for (let i = 0; i < t.ndim - 1; i++) rows *= t.shape[i];
  return [rows, t.shape[t.ndim - 1]];
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? (v.constructor?.name ?? "an object") : `${typeof v} ${String(v)}`;
}
