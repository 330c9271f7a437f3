// Backward forms of the activations (dx from the upstream gradient dy), for autodiff; f32 and f64.
import { COMPUTE_BOUND_MIN_ELEMENTS, checkArg, checkLike, outLike, runElementwise } from "./elementwise.ts";
import type { Tensor } from "./tensor.ts";

function backward(op: string, kernel: string, arg: string, x: Tensor, dy: Tensor, out?: Tensor, minElements?: number) {
  const t = checkArg(op, arg, x, ["f32", "f64"]);
  const g = checkLike(op, "dy", dy, arg, t);
  const o = outLike(op, t, out);
  runElementwise(`as.${kernel}_${t.dtype}`, [t, g, o], t.size, minElements);
  return o;
}

/** dx = dy where x > 0, else 0 (x is relu's input). */
export function reluBackward(x: Tensor, dy: Tensor, out?: Tensor): Tensor {
  return backward("reluBackward", "relu_backward", "x", x, dy, out);
}

/** dx = dy · gelu'(x) (x is gelu's input; tanh form). */
export function geluBackward(x: Tensor, dy: Tensor, out?: Tensor): Tensor {
  return backward("geluBackward", "gelu_backward", "x", x, dy, out, COMPUTE_BOUND_MIN_ELEMENTS);
}

/** dx = dy · (1 − y²), where y = tanh(x) is the forward output. */
export function tanhBackward(y: Tensor, dy: Tensor, out?: Tensor): Tensor {
  return backward("tanhBackward", "tanh_backward", "y", y, dy, out);
}

/** dx = dy · y · (1 − y), where y = sigmoid(x) is the forward output. */
export function sigmoidBackward(y: Tensor, dy: Tensor, out?: Tensor): Tensor {
  return backward("sigmoidBackward", "sigmoid_backward", "y", y, dy, out);
}
