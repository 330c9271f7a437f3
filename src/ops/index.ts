// Differentiable ops and reverse-mode autodiff (src/ops): the public surface of this layer.
export { gelu, relu, sigmoid, tanh } from "./activation.ts";
export { add, mul, scale, sub } from "./arith.ts";
export { castInto } from "./castInto.ts";
export { dropout, type UniformSource } from "./dropout.ts";
export { embedding } from "./embedding.ts";
export { layerNorm } from "./layerNorm.ts";
export { linear, type MatmulOptions, matmul } from "./linear.ts";
export { mse, softmaxCrossEntropy } from "./loss.ts";
export { mean, sum } from "./reduce.ts";
export { reshape, transpose } from "./shape.ts";
export type { Backward, GradBuffer, GradSink } from "./tape.ts";
export { type GradContext, type LossAndGrads, valueAndGrad } from "./valueAndGrad.ts";
