// The CUDA layer's public surface (exported from plait as `cuda`): the runtime calls, the
// device stream plait queues work on, cuBLAS, the PTX kernels and the error class. Nothing here
// loads a native library until a function is called.
import { refusingDeviceTaped } from "../../src/core/device.ts";
import * as cublas from "./cublas.ts";
import * as ops from "./ops.ts";

export * from "./api.ts";
export { devicePool, deviceStream, synchronizeDevice } from "./backend.ts";
export { type CublasGemmArgs, type CudaGemmOptions, cublasHandle, gemmArgs } from "./cublas.ts";
export { deviceName, loadModule, moduleFunction, useDevice } from "./driver.ts";
export { CudaError } from "./errors.ts";
export { gridFor, KERNELS, kernelFunction, launchKernel, packParams, paramLayout, ptxSource } from "./kernels.ts";
export type { AdamOnOptions, AdamScalars, SgdOnOptions } from "./ops.ts";
export { BlockPool, roundBlock } from "./pool.ts";

// The kernels as users call them: refusing tensors that valueAndGrad's device tape records (the
// differentiable ops call the unwrapped ones).
const r = refusingDeviceTaped;
export const cudaMatmul = r("cudaMatmul", cublas.cudaMatmul);
export const castOn = r("castOn", ops.castOn);
export const unscaleOn = r("unscaleOn", ops.unscaleOn);
export const finiteFlag = ops.finiteFlag;
export const sgdOn = r("sgdOn", ops.sgdOn);
export const adamOn = r("adamOn", ops.adamOn);
export const adamStepOn = r("adamStepOn", ops.adamStepOn);
export const addOn = r("addOn", ops.addOn);
export const mulOn = r("mulOn", ops.mulOn);
export const reluOn = r("reluOn", ops.reluOn);
export const reluBackwardOn = r("reluBackwardOn", ops.reluBackwardOn);
export const softmaxXentOn = r("softmaxXentOn", ops.softmaxXentOn);
export const sumOn = r("sumOn", ops.sumOn);
export const sumToOn = r("sumToOn", ops.sumToOn);
export const scaleOn = r("scaleOn", ops.scaleOn);
export const axpyOn = r("axpyOn", ops.axpyOn);
export const scaleByOn = r("scaleByOn", ops.scaleByOn);
export const colSumOn = r("colSumOn", ops.colSumOn);
export * from "./runtime.ts";
