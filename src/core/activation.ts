// Activations of f32 and f64 tensors (backward forms: activation-backward.ts).
import { COMPUTE_BOUND_MIN_ELEMENTS, checkArg, outLike, runElementwise } from "./elementwise.ts";
import type { Tensor } from "./tensor.ts";

function forward(op: string, x: Tensor, out: Tensor | undefined, minElements?: number): Tensor {
  const t = checkArg(op, "x", x, ["f32", "f64"]);
  const o = outLike(op, t, out);
  runElementwise(`as.${op}_${t.dtype}`, [t, o], t.size, minElements);
  return o;
}

/** max(x, 0) elementwise; NaN stays NaN. */
export function relu(x: Tensor, out?: Tensor): Tensor {
  return forward("relu", x, out);
}

/** gelu, tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))); error bounds in kernels/as/activation.ts (f32) and activation_math_f64.ts (f64). */
export function gelu(x: Tensor, out?: Tensor): Tensor {
  return forward("gelu", x, out, COMPUTE_BOUND_MIN_ELEMENTS);
}

/** tanh x elementwise (f32 < 1.5 ulp, f64 < 3 ulp; saturates to ±1). */
export function tanh(x: Tensor, out?: Tensor): Tensor {
  return forward("tanh", x, out, COMPUTE_BOUND_MIN_ELEMENTS);
}

/** 1 / (1 + e^{-x}) elementwise (< 3 ulp). */
export function sigmoid(x: Tensor, out?: Tensor): Tensor {
  return forward("sigmoid", x, out, COMPUTE_BOUND_MIN_ELEMENTS);
}
