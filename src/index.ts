// plait's public API. Later layers (ops, optim, comm, precision, strategy) add their exports here.

export * from "./checkpoint/index.ts";
export { gelu, relu, sigmoid, tanh } from "./core/activation.ts";
export { geluBackward, reluBackward, sigmoidBackward, tanhBackward } from "./core/activation-backward.ts";
export { Arena } from "./core/arena.ts";
export { add, axpy, div, fma, mul, scale, sub } from "./core/arith.ts";
export { cast, fromBF16, fromF16, toBF16, toF16, unscaleAndCheckFinite } from "./core/cast.ts";
export { DTYPES, type DType } from "./core/dtype.ts";
export { full, ones } from "./core/fill.ts";
export { allFinite, max, maxAbs, mean, sum, sumSquares } from "./core/reduce.ts";
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
export { logSoftmax, softmax } from "./core/softmax.ts";
export { type Shape, Tensor, type TensorOptions, tensor, zeros } from "./core/tensor.ts";
export { type Tree, type TreeDef, treeFlatten, treeLeaves, treeMap, treeUnflatten } from "./core/tree.ts";
export { exp, log } from "./core/unary.ts";
export * from "./data/index.ts";
