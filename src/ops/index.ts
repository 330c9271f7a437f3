// Differentiable ops and reverse-mode autodiff (src/ops): the public surface of this layer.

export { castInto } from "../core/castInto.ts";
export { gelu, relu, sigmoid, tanh } from "./activation.ts";
export { add, div, fma, mul, scale, sub } from "./arith.ts";
export { type BatchNormOptions, batchNorm } from "./batchNorm.ts";
export { type BmmOptions, bmm } from "./bmm.ts";
export { cast } from "./cast.ts";
export { clamp } from "./clamp.ts";
export { concat, stack } from "./concat.ts";
export { type Conv2dOptions, conv2d } from "./conv.ts";
export { dropout, type UniformSource } from "./dropout.ts";
export { embedding } from "./embedding.ts";
export { gather } from "./gather.ts";
export { layerNorm } from "./layerNorm.ts";
export { linear, type MatmulOptions, matmul } from "./linear.ts";
export { mse, softmaxCrossEntropy } from "./loss.ts";
export { permute } from "./permute.ts";
export { type AvgPool2dOptions, avgPool2d, maxPool2d, type Pool2dOptions } from "./pool.ts";
export { max, maxAbs, mean, sum, sumSquares } from "./reduce.ts";
export { type Axes, argmax, logSumExp } from "./reduceAxis.ts";
export { reshape, transpose } from "./shape.ts";
export { slice } from "./slice.ts";
export { logSoftmax, softmax } from "./softmax.ts";
export type { Backward, GradBuffer, GradSink } from "./tape.ts";
export { exp, log } from "./unary.ts";
export { type GradContext, type LossAndGrads, valueAndGrad } from "./valueAndGrad.ts";
export { maskedFill, where } from "./where.ts";
