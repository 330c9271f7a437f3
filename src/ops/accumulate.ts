import { bytesOf } from "../core/dtype.ts";
import { parallelFor } from "../core/parallel.ts";
import { runtime } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";

/** dst += src, elementwise over tensors of one shape and dtype (gradient accumulation). */
export function addInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== "f32" && dst.dtype !== "f64") {
    throw new TypeError(`plait: gradient accumulation: no kernel for dtype ${dst.dtype}`);
  }
  const d = dst.ptr;
  const s = src.ptr;
  const b = bytesOf(dst.dtype);
  parallelFor(`as.add_${dst.dtype}`, dst.size, (i, n) => [d + i * b, s + i * b, d + i * b, n]);
}

/** A new tensor holding a copy of `t`. */
export function copyOf(t: Tensor): Tensor {
  const out = new Tensor(t.shape, t.dtype);
  runtime().k.as.copy_bytes(out.ptr, t.ptr, t.byteLength);
  return out;
}
