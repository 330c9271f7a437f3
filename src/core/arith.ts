// Elementwise arithmetic on same-shape tensors (broadcasting is a separate op): f32 and f64.
import { checkArg, checkLike, outLike, runElementwise } from "./elementwise.ts";
import type { Tensor } from "./tensor.ts";

const FLOATS = ["f32", "f64"] as const;

function binary(op: string, a: Tensor, b: Tensor, out: Tensor | undefined): Tensor {
  const x = checkArg(op, "a", a, FLOATS);
  const y = checkLike(op, "b", b, "a", x);
  const o = outLike(op, x, out);
  runElementwise(`as.${op}_${x.dtype}`, [x, y, o], x.size);
  return o;
}

/** a + b elementwise, into `out` (may be a or b) or a new tensor. */
export function add(a: Tensor, b: Tensor, out?: Tensor): Tensor {
  return binary("add", a, b, out);
}

/** a − b elementwise. */
export function sub(a: Tensor, b: Tensor, out?: Tensor): Tensor {
  return binary("sub", a, b, out);
}

/** a · b elementwise. */
export function mul(a: Tensor, b: Tensor, out?: Tensor): Tensor {
  return binary("mul", a, b, out);
}

/** a / b elementwise (IEEE: x/0 = ±inf, 0/0 = NaN). */
export function div(a: Tensor, b: Tensor, out?: Tensor): Tensor {
  return binary("div", a, b, out);
}

/** s · x elementwise; s is rounded to x's dtype. */
export function scale(x: Tensor, s: number, out?: Tensor): Tensor {
  const t = checkArg("scale", "x", x, FLOATS);
  const o = outLike("scale", t, out);
  runElementwise(`as.scale_${t.dtype}`, [t, s, o], t.size);
  return o;
}

/** y ← alpha · x + y, in place on y; returns y. */
export function axpy(alpha: number, x: Tensor, y: Tensor): Tensor {
  const t = checkArg("axpy", "x", x, FLOATS);
  const u = checkLike("axpy", "y", y, "x", t);
  runElementwise(`as.axpy_${t.dtype}`, [alpha, t, u], t.size);
  return u;
}

/** a · b + c elementwise (a single rounding where the relaxed-SIMD build fuses it). */
export function fma(a: Tensor, b: Tensor, c: Tensor, out?: Tensor): Tensor {
  const x = checkArg("fma", "a", a, FLOATS);
  const y = checkLike("fma", "b", b, "a", x);
  const z = checkLike("fma", "c", c, "a", x);
  const o = outLike("fma", x, out);
  runElementwise(`as.fma_${x.dtype}`, [x, y, z, o], x.size);
  return o;
}
