// plait's public API. The differentiable ops (src/ops) own the short names (matmul, add, relu,
// sum, ...); the raw kernels behind them, with out buffers and JS-number reductions, are `core.*`.

export { type BlasStatus, blasStatus } from "../ffi/blas.ts";
export { CudaError } from "../ffi/cuda/errors.ts";
export * as cuda from "../ffi/cuda/index.ts";
export * from "./checkpoint/index.ts";
export { type EnvReport, envReport } from "./cli/env.ts";
export * from "./comm/index.ts";
export { Arena } from "./core/arena.ts";
export { fromBF16, fromF16, toBF16, toF16 } from "./core/cast.ts";
export { type CudaDevice, CudaTensor, type Device } from "./core/device.ts";
export { DTYPES, type DType } from "./core/dtype.ts";
export { full, ones } from "./core/fill.ts";
export type { GemmOptions } from "./core/gemm.ts";
export * as core from "./core/ops.ts";
export {
  attachRuntime,
  configure,
  type Runtime,
  type RuntimeHandle,
  type RuntimeOptions,
  runtime,
  runtimeHandle,
} from "./core/runtime.ts";
export { keep, scope } from "./core/scope.ts";
export { type Shape, Tensor, type TensorOptions, tensor, zeros } from "./core/tensor.ts";
export { type Tree, type TreeDef, treeFlatten, treeLeaves, treeMap, treeUnflatten } from "./core/tree.ts";
export * from "./data/index.ts";
export * from "./env/index.ts";
export * from "./fit/index.ts";
export * from "./launch/index.ts";
export * from "./nn/index.ts";
export * from "./ops/index.ts";
export * from "./optim/index.ts";
export * from "./precision/index.ts";
export * from "./step/index.ts";
export * from "./strategy/index.ts";
