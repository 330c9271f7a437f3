import * as core from "../core/cast.ts";
import { CudaTensor } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import type { Tensor } from "../core/tensor.ts";
import { deviceCast } from "./cuda.ts";
import { gradDTypeOf, tapeFor } from "./tape.ts";

/**
 * A new tensor holding `t` converted to `dtype` (a copy when the dtype is the same), between
 * f64, f32, f16 and bf16 as `core.cast` converts (f64 → f16/bf16 is refused: it would round
 * twice). Gradient: straight through, g converted to t's gradient dtype (t's own, f32 for
 * f16/bf16), so a half compute copy made inside the loss passes its gradient back to the f32
 * or f64 param it came from.
 */
export function cast(t: Tensor, dtype: DType): Tensor;
export function cast(t: CudaTensor, dtype: DType): CudaTensor;
export function cast(t: Tensor | CudaTensor, dtype: DType): Tensor | CudaTensor {
  if (t instanceof CudaTensor) return deviceCast(t, dtype); // ops/cuda.ts: f32 ↔ f16/bf16, not differentiable there
  const out = core.cast(t, dtype); // checks t and dtype, with the same messages as core.cast
  const tape = tapeFor(t);
  if (tape) {
    const want = gradDTypeOf(t);
    tape.record(out, (g, sink) => sink.give(t, g.dtype === want ? g : core.cast(g, want)), []);
  }
  return out;
}
