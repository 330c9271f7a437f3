// exp and log of f32 tensors, with the SIMD approximations of kernels/as/math.ts (errors there).
import { COMPUTE_BOUND_MIN_ELEMENTS, checkArg, outLike, runElementwise } from "./elementwise.ts";
import type { Tensor } from "./tensor.ts";

function unary(op: string, x: Tensor, out: Tensor | undefined): Tensor {
  const t = checkArg(op, "x", x, ["f32"]);
  const o = outLike(op, t, out);
  runElementwise(`as.${op}_f32`, [t, o], t.size, COMPUTE_BOUND_MIN_ELEMENTS);
  return o;
}

/** e^x elementwise (≤ 1 ulp; overflow gives inf, underflow 0 or a subnormal). */
export function exp(x: Tensor, out?: Tensor): Tensor {
  return unary("exp", x, out);
}

/** ln x elementwise (≤ 1 ulp; log(±0) = -inf, log(x < 0) = NaN). */
export function log(x: Tensor, out?: Tensor): Tensor {
  return unary("log", x, out);
}
