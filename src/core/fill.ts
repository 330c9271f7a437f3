import { parallelFor } from "./parallel.ts";
import { checkShape, numberToBF16, numberToF16, type Shape, Tensor, type TensorOptions } from "./tensor.ts";

/** A new tensor with every element `value` (f32 through the WASM fill kernel, split over the pool). */
export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const t = new Tensor(checkShape(shape, "full() argument shape"), opts.dtype ?? "f32");
  if (t.dtype === "f32") {
    const ptr = t.ptr;
    parallelFor("c.fill_f32", t.size, (start, count) => [ptr + start * 4, value, count]);
  } else if (t.dtype === "f16") t.data().fill(numberToF16(value));
  else if (t.dtype === "bf16") t.data().fill(numberToBF16(value));
  else t.data().fill(value);
  return t;
}

export const ones = (shape: Shape, opts: TensorOptions = {}) => full(shape, 1, opts);
