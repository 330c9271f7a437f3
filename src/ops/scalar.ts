import { Tensor } from "../core/tensor.ts";

/** A one-element tensor of shape [] holding `value`. */
export function scalar(value: number, dtype: "f32" | "f64"): Tensor {
  const t = new Tensor([], dtype);
  t.data()[0] = value;
  return t;
}

/** The value of a one-element tensor. */
export const readScalar = (t: Tensor): number => t.data()[0];
