// The ops' door to CUDA tensors: an op whose arguments are CudaTensors runs its device kernel
// (matmul → cuBLAS). Arguments on two devices are an error naming both; a CUDA tensor that a
// tape records is refused (no backward on the device yet), so no gradient is silently missing.
import { cudaMatmul } from "../../ffi/cuda/cublas.ts";
import { type AnyTensor, CudaTensor, checkSameDevice } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";
import { tapeFor } from "./tape.ts";

/** Whether any of `args` lives on a CUDA device (then the op dispatches here). */
export const onDevice = (...args: unknown[]): boolean => args.some((x) => x instanceof CudaTensor);

/** matmul's options on a device (bias a CudaTensor). */
export interface DeviceMatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: CudaTensor;
}

/** matmul for CUDA tensors: same device for a, b and bias, then cuBLAS. */
export function deviceMatmul(a: AnyTensor, b: AnyTensor, opts: DeviceMatmulOptions | { bias?: AnyTensor }): CudaTensor {
  const { bias } = opts;
  const device = checkSameDevice("matmul", [
    ["a", a],
    ["b", b],
    ["bias", bias],
  ]);
  if (tapeFor(a as Tensor, b as Tensor, bias as Tensor | undefined)) {
    throw new Error(
      `plait: matmul: its arguments are on ${device} and recorded for a gradient; ops on CUDA devices have no backward yet (run valueAndGrad on cpu tensors)`,
    );
  }
  return cudaMatmul(a as CudaTensor, b as CudaTensor, opts as DeviceMatmulOptions);
}
