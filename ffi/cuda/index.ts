// The CUDA layer's public surface (exported from plait as `cuda`): the runtime calls, the
// device stream plait queues work on, cuBLAS, the PTX kernels and the error class. Nothing here
// loads a native library until a function is called.
export * from "./api.ts";
export { deviceStream, synchronizeDevice } from "./backend.ts";
export { type CublasGemmArgs, type CudaGemmOptions, cublasHandle, cudaMatmul, gemmArgs } from "./cublas.ts";
export { deviceName, loadModule, moduleFunction, useDevice } from "./driver.ts";
export { CudaError } from "./errors.ts";
export { gridFor, KERNELS, kernelFunction, launchKernel, packParams, paramLayout, ptxSource } from "./kernels.ts";
export {
  type AdamOnOptions,
  adamOn,
  addOn,
  castOn,
  finiteFlag,
  mulOn,
  reluBackwardOn,
  reluOn,
  type SgdOnOptions,
  sgdOn,
  softmaxXentOn,
  sumOn,
  unscaleOn,
} from "./ops.ts";
export * from "./runtime.ts";
