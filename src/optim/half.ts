import { cast } from "../core/cast.ts";
import { CudaTensor } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { parallelFor } from "../core/parallel.ts";
import type { Tensor } from "../core/tensor.ts";
import { deviceUpdate } from "./device.ts";
import { runFused } from "./fused.ts";

// Optimizer updates of f16/bf16 params (true half precision): the moments are f32, and each
// update widens the param and its grad to f32 (exactly), runs the f32 kernel, and rounds the
// param back to nearest even. The result is bit for bit the f32 update of the widened values,
// rounded once; an update smaller than half an ulp of its param is lost in that rounding.

const isHalf = (d: DType) => d === "f16" || d === "bf16";

/** The dtype of the optimizer's slots (moments, momentum) for params of dtype `d`. */
export const slotDTypeOf = (d: DType): DType => (isHalf(d) ? "f32" : d);

/**
 * Runs optimizer kernel `kernel` (e.g. "adam": as.adam_f32 / as.adam_f64) on param leaf `p`, its
 * grad `g` and its slots, with `scalars` after the element count.
 */
export function runUpdate(kernel: string, p: Tensor, g: Tensor, slots: readonly Tensor[], scalars: readonly number[]) {
  if ((p as unknown) instanceof CudaTensor) return deviceUpdate(kernel, p as unknown as CudaTensor, g, slots, scalars); // optim/device.ts
  if (!isHalf(p.dtype)) {
    runFused(`as.${kernel}_${p.dtype}`, [p, g, ...slots], scalars);
    return;
  }
  const wide = cast(p, "f32");
  const wideGrad = cast(g, "f32");
  try {
    runFused(`as.${kernel}_f32`, [wide, wideGrad, ...slots], scalars);
    const [src, dst] = [wide.ptr, p.ptr];
    parallelFor(`as.f32_to_${p.dtype}`, p.size, (i, n) => [src + 4 * i, dst + 2 * i, n]);
  } finally {
    wide.dispose();
    wideGrad.dispose();
  }
}
