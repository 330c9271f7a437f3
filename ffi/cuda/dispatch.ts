// The device kernels that plait's ops, autodiff, optimizers and precision transforms call on
// CudaTensors, as one replaceable table. Users always run `cudaKernels` (cuBLAS and the PTX
// kernels of ffi/cuda/kernels); the only other table is the one test/cuda-autodiff.test.ts
// installs to run plait's device wiring (dispatch, tape, optimizer and transform plumbing) on a
// machine without a GPU, against the CPU results. The real kernels are tested on a GPU by
// test/cuda-gpu.test.ts and test/gpu/run.sh.
import type { CudaTensor } from "../../src/core/device.ts";
import { deviceStream } from "./backend.ts";
import { cudaMatmul } from "./cublas.ts";
import {
  adamOn,
  adamStepOn,
  addOn,
  axpyOn,
  castOn,
  colSumOn,
  finiteFlag,
  mulOn,
  reluBackwardOn,
  reluOn,
  scaleByOn,
  scaleOn,
  sgdOn,
  softmaxXentOn,
  sumOn,
  sumToOn,
  unscaleOn,
} from "./ops.ts";
import { memsetAsync } from "./runtime.ts";

/** Sets every byte of `t` to zero, queued on its device's stream. */
function zeroOn(t: CudaTensor): void {
  if (t.byteLength > 0) memsetAsync(t.ptr, 0, t.byteLength, deviceStream(t.deviceIndex));
}

/** The kernels behind plait's device paths (see ffi/cuda/ops.ts and cublas.ts for each contract). */
export const cudaKernels = {
  matmul: cudaMatmul,
  cast: castOn,
  unscale: unscaleOn,
  finiteFlag,
  sgd: sgdOn,
  adam: adamOn,
  adamStep: adamStepOn,
  add: addOn,
  mul: mulOn,
  relu: reluOn,
  reluBackward: reluBackwardOn,
  softmaxXent: softmaxXentOn,
  sum: sumOn,
  sumTo: sumToOn,
  scale: scaleOn,
  axpy: axpyOn,
  scaleBy: scaleByOn,
  colSum: colSumOn,
  zero: zeroOn,
};

export type DeviceKernels = typeof cudaKernels;

let current: DeviceKernels = cudaKernels;

/** The kernel table in use (cudaKernels unless a test swapped it). */
export const deviceKernels = (): DeviceKernels => current;

/**
 * For tests only: installs another kernel table (undefined restores cudaKernels) and returns
 * the one it replaced.
 */
export function setDeviceKernels(k: DeviceKernels | undefined): DeviceKernels {
  const was = current;
  current = k ?? cudaKernels;
  return was;
}
