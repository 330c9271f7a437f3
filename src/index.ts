// plait's public API. Later layers (ops, optim, comm, precision, strategy) add their exports here.
export { Arena } from "./core/arena.ts";
export { DTYPES, type DType } from "./core/dtype.ts";
export { full, ones } from "./core/fill.ts";
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
