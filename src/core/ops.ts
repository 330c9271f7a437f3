// The non-differentiable tensor ops of src/core, for `import { core } from "plait"`: the same
// kernels the differentiable ops run on, with their extra options (out buffers, accumulate,
// transposes) and JS-number reductions.
export { gelu, relu, sigmoid, tanh } from "./activation.ts";
export { geluBackward, reluBackward, sigmoidBackward, tanhBackward } from "./activation-backward.ts";
export { add, axpy, div, fma, mul, scale, sub } from "./arith.ts";
export { cast, unscaleAndCheckFinite } from "./cast.ts";
export { clamp } from "./clamp.ts";
export { full, ones } from "./fill.ts";
export { type GemmOptions, matmul } from "./gemm.ts";
export { allFinite, max, maxAbs, mean, sum, sumSquares } from "./reduce.ts";
export { logSoftmax, softmax } from "./softmax.ts";
export { exp, log } from "./unary.ts";
