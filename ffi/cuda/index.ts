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
export const cudaMatmul: typeof cublas.cudaMatmul = r("cudaMatmul", cublas.cudaMatmul);
export const castOn: typeof ops.castOn = r("castOn", ops.castOn);
export const unscaleOn: typeof ops.unscaleOn = r("unscaleOn", ops.unscaleOn);
export const finiteFlag: typeof ops.finiteFlag = ops.finiteFlag;
export const sgdOn: typeof ops.sgdOn = r("sgdOn", ops.sgdOn);
export const adamOn: typeof ops.adamOn = r("adamOn", ops.adamOn);
export const adamStepOn: typeof ops.adamStepOn = r("adamStepOn", ops.adamStepOn);
export const addOn: typeof ops.addOn = r("addOn", ops.addOn);
export const mulOn: typeof ops.mulOn = r("mulOn", ops.mulOn);
export const reluOn: typeof ops.reluOn = r("reluOn", ops.reluOn);
export const reluBackwardOn: typeof ops.reluBackwardOn = r("reluBackwardOn", ops.reluBackwardOn);
export const softmaxXentOn: typeof ops.softmaxXentOn = r("softmaxXentOn", ops.softmaxXentOn);
export const sumOn: typeof ops.sumOn = r("sumOn", ops.sumOn);
export const sumToOn: typeof ops.sumToOn = r("sumToOn", ops.sumToOn);
export const scaleOn: typeof ops.scaleOn = r("scaleOn", ops.scaleOn);
export const axpyOn: typeof ops.axpyOn = r("axpyOn", ops.axpyOn);
export const scaleByOn: typeof ops.scaleByOn = r("scaleByOn", ops.scaleByOn);
export const colSumOn: typeof ops.colSumOn = r("colSumOn", ops.colSumOn);
export * from "./runtime.ts";
