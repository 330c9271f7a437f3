import type { DType } from "../core/dtype.ts";
import { detectingAnomalies } from "../core/runtime.ts";
import { bf16ToNumber, checkTensor, f16ToNumber, type Shape, shapeStr, type Tensor } from "../core/tensor.ts";

// Argument checks shared by the ops. Every message names the op, the argument, what was
// expected and what came.

/**
 * An op's tensor argument: checkTensor's check. Values are not looked at: inf and NaN flow through the ops to
 * the loss and the gradients, where a loss scaler skips the step. In anomaly mode
 * (configure({ detectAnomaly: true })) every op's inputs are scanned as well, and the first
 * non-finite element is an error naming the op and the argument.
 */
export function checkInput(op: string, arg: string, x: unknown): Tensor {
  const t = checkTensor(op, arg, x);
  if (detectingAnomalies()) checkFinite(op, `argument ${arg}`, t);
  return t;
}

/** Throws if float tensor `t` holds an inf or NaN, naming the op, `what` and the first such element. */
export function checkFinite(op: string, what: string, t: Tensor): void {
  const i = firstNonFinite(t);
  if (i < 0) return;
  const raw = t.data()[i];
  const value = t.dtype === "f16" ? f16ToNumber(raw) : t.dtype === "bf16" ? bf16ToNumber(raw) : raw;
  throw new RangeError(
    `plait: ${op}: ${what} has a non-finite value ${value} at flat index ${i} of ${t.describe()} (anomaly mode: configure({ detectAnomaly: true }))`,
  );
}

/** The flat index of the first inf or NaN element of `t`, or -1 (always for integer tensors). */
export function firstNonFinite(t: Tensor): number {
  const data = t.data();
  const n = data.length;
  if (t.dtype === "f32" || t.dtype === "f64") {
    for (let i = 0; i < n; i++) if (!Number.isFinite(data[i])) return i;
  } else if (t.dtype === "f16" || t.dtype === "bf16") {
    const exponent = t.dtype === "f16" ? 0x7c00 : 0x7f80; // all ones: inf or NaN
    for (let i = 0; i < n; i++) if ((data[i] & exponent) === exponent) return i;
  }
  return -1;
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
