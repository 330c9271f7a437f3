import { parallelFor } from "./parallel.ts";
import {
  checkShape,
  numberToBF16,
  numberToF16,
  type Shape,
  Tensor,
  type TensorOptions,
  tensorOptions,
} from "./tensor.ts";

/** A new tensor with every element `value` (f32 through the WASM fill kernel, split over the pool). */
export function full(shape: Shape, value: number, opts?: TensorOptions): Tensor {
  return fill("full()", shape, value, opts);
}

/** A new tensor of ones (f32 unless `dtype` says otherwise). */
export const ones = (shape: Shape, opts?: TensorOptions): Tensor => fill("ones()", shape, 1, opts);

function fill(op: string, shape: Shape, value: number, opts: TensorOptions | undefined): Tensor {
  const dtype = tensorOptions(op, opts) ?? "f32";
  if (typeof value !== "number")
    throw new TypeError(`plait: ${op} argument value must be a number, got ${typeof value}`);
  const t = new Tensor(checkShape(shape, `${op} argument shape`), dtype);
  if (t.dtype === "f32") {
    const ptr = t.ptr;
    parallelFor("c.fill_f32", t.size, (start, count) => [ptr + start * 4, value, count]);
  } else if (t.dtype === "f16") t.data().fill(numberToF16(value));
  else if (t.dtype === "bf16") t.data().fill(numberToBF16(value));
  else t.data().fill(value);
  return t;
}
