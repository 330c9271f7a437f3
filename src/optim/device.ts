// The optimizers on a CUDA device: a param leaf that is a CudaTensor (with its grad and slots on
// the same device) is updated by the fused SGD/Adam kernel of ffi/cuda (sgd.cu, adamw.cu) with
// the scalars src/optim computed for the CPU kernel, and its slots start as device zeros. Called
// from half.ts's runUpdate and state.ts's initState with a one-line branch.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import type { AdamScalars } from "../../ffi/cuda/ops.ts";
import { CudaTensor } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";

/** Zeros shaped like device param `p` (f32: the device kernels' slot dtype). */
export function deviceSlot(p: CudaTensor): Tensor {
  const z = new CudaTensor(p.shape, "f32", p.deviceIndex);
  deviceKernels().zero(z);
  return z as unknown as Tensor;
}

/** runUpdate for a device leaf: "sgd", "sgd_momentum" or "adam" with half.ts's scalars. */
export function deviceUpdate(
  kernel: string,
  p: CudaTensor,
  g: Tensor,
  slots: readonly Tensor[],
  scalars: readonly number[],
) {
  if (p.dtype !== "f32") {
    throw new TypeError(
      `plait: ${kernel.startsWith("sgd") ? "sgd" : "adam"}.update on ${p.device}: param ${p.describe()} is not f32; the device optimizers update f32 params (mixed precision keeps f32 masters; true half precision runs on cpu only)`,
    );
  }
  const k = deviceKernels();
  const [G, ...S] = [g, ...slots] as unknown as CudaTensor[];
  if (kernel === "sgd") k.sgd(p, G, undefined, { lr: scalars[0], weightDecay: scalars[1] });
  else if (kernel === "sgd_momentum") {
    const [lr, weightDecay, momentum, gradScale, nesterov, first] = scalars;
    k.sgd(p, G, S[0], {
      lr,
      weightDecay,
      momentum,
      dampening: 1 - gradScale,
      nesterov: nesterov === 1,
      started: first === 0,
    });
  } else if (kernel === "adam") k.adamStep(p, G, S[0], S[1], scalars as unknown as AdamScalars);
  else throw new Error(`plait: no device optimizer kernel for ${kernel}`);
}
