import * as fwd from "../core/activation.ts";
import * as bwd from "../core/activation-backward.ts";
import { CudaTensor } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";
import { checkInput } from "./check.ts";
import { deviceRelu } from "./cuda.ts";
import { tapeFor } from "./tape.ts";

// Activations (f32 and f64, as the kernels are). Each saves the least its backward needs: relu, tanh
// and sigmoid their output (relu's output is > 0 exactly where its input is), gelu its input.

/** max(x, 0) elementwise. */
export function relu(x: Tensor): Tensor;
export function relu(x: CudaTensor): CudaTensor;
export function relu(x: Tensor | CudaTensor): Tensor | CudaTensor {
  if (x instanceof CudaTensor) return deviceRelu(x); // ops/cuda.ts
  checkInput("relu", "x", x);
  const y = fwd.relu(x);
  const tape = tapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.assign(x, (dx) => bwd.reluBackward(y, g, dx)), [y]);
  return y;
}

/** gelu (tanh form) elementwise. */
export function gelu(x: Tensor): Tensor {
  checkInput("gelu", "x", x);
  const y = fwd.gelu(x);
  const tape = tapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.assign(x, (dx) => bwd.geluBackward(x, g, dx)), [x]);
  return y;
}

/** tanh elementwise. */
export function tanh(x: Tensor): Tensor {
  checkInput("tanh", "x", x);
  const y = fwd.tanh(x);
  const tape = tapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.assign(x, (dx) => bwd.tanhBackward(y, g, dx)), [y]);
  return y;
}

/** The logistic sigmoid 1 / (1 + e^−x) elementwise. */
export function sigmoid(x: Tensor): Tensor {
  checkInput("sigmoid", "x", x);
  const y = fwd.sigmoid(x);
  const tape = tapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.assign(x, (dx) => bwd.sigmoidBackward(y, g, dx)), [y]);
  return y;
}
