import { numberToBF16, numberToF16, type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput, checkSameDType } from "./check.ts";
import { broadcastShapes, expandTo, sameDims, sumTo } from "./strided.ts";
import { tapeFor } from "./tape.ts";

const VALUES = ["f32", "f64", "f16", "bf16"] as const;
const MASKS = ["u8", "i32"] as const;

/**
 * mask ? a : b elementwise, with numpy broadcasting among all three (see add). `mask` is u8 or
 * i32 (nonzero is true); a and b share a float dtype (f32, f64, f16, bf16), which the result
 * has. Gradients: g where the mask is true to a, where false to b, each summed back over its
 * broadcast axes; the mask gets none.
 */
export function where(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  const op = "where";
  checkInput(op, "mask", mask);
  checkInput(op, "a", a);
  checkInput(op, "b", b);
  checkDTypeIn(op, "mask", mask, MASKS);
  checkDTypeIn(op, "a", a, VALUES);
  checkSameDType(op, "b", b, "a", a);
  const shape = broadcastShapes(op, [mask.shape, a.shape, b.shape], ["mask", "a", "b"]);
  const m = expandTo(mask, shape);
  const ae = expandTo(a, shape);
  const be = expandTo(b, shape);
  const out = new Tensor(shape, a.dtype);
  const ms = m.data();
  const as = ae.data();
  const bs = be.data();
  const ys = out.data();
  for (let i = 0; i < ys.length; i++) ys[i] = ms[i] !== 0 ? as[i] : bs[i];
  for (const t of [ae, be]) if (t !== a && t !== b) t.dispose();
  const tape = tapeFor(a, b);
  if (!tape) {
    if (m !== mask) m.dispose();
    return out;
  }
  tape.record(
    out,
    (g, sink) => {
      selectGrad(g, m, true, a, shape, sink);
      selectGrad(g, m, false, b, shape, sink);
    },
    [m],
    m === mask ? [] : [m],
  );
  return out;
}

/**
 * x with `value` wherever `mask` is true (nonzero): mask is u8 or i32 and broadcasts to x's
 * shape (e.g. a causal mask [t, t] over attention scores [b, h, t, t] with value −inf). Any
 * float dtype of x (value rounded to it). Gradient: g where the mask is false, 0 where filled.
 */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const op = "maskedFill";
  checkInput(op, "x", x);
  checkInput(op, "mask", mask);
  checkDTypeIn(op, "x", x, VALUES);
  checkDTypeIn(op, "mask", mask, MASKS);
  if (typeof value !== "number")
    throw new TypeError(`plait: ${op}: argument value must be a number, got ${typeof value}`);
  const shape = broadcastShapes(op, [x.shape, mask.shape], ["x", "mask"]);
  if (!sameDims(shape, x.shape)) {
    throw new RangeError(
      `plait: ${op}: argument mask has shape ${shapeStr(mask.shape)}, which broadcasts x ${shapeStr(x.shape)} to ${shapeStr(shape)}; rule: the mask broadcasts to x's shape`,
    );
  }
  const m = expandTo(mask, shape);
  const fill = x.dtype === "f16" ? numberToF16(value) : x.dtype === "bf16" ? numberToBF16(value) : value;
  const out = new Tensor(shape, x.dtype);
  const ms = m.data();
  const xs = x.data();
  const ys = out.data();
  for (let i = 0; i < ys.length; i++) ys[i] = ms[i] !== 0 ? fill : xs[i];
  const tape = tapeFor(x);
  if (!tape) {
    if (m !== mask) m.dispose();
    return out;
  }
  tape.record(out, (g, sink) => selectGrad(g, m, false, x, shape, sink), [m], m === mask ? [] : [m]);
  return out;
}

/** x's gradient: g where the (broadcast) mask equals `when`, else 0, summed back to x's shape. */
function selectGrad(
  g: Tensor,
  m: Tensor,
  when: boolean,
  x: Tensor,
  shape: Shape,
  sink: { assign(x: Tensor, write: (out: Tensor) => void): void },
): void {
  sink.assign(x, (dx) => {
    const full = sameDims(x.shape, shape) ? dx : new Tensor(shape, dx.dtype);
    const ms = m.data();
    const gs = g.data();
    const fs = full.data();
    for (let i = 0; i < fs.length; i++) fs[i] = (ms[i] !== 0) === when ? gs[i] : 0;
    if (full !== dx) {
      sumTo(full, dx);
      full.dispose();
    }
  });
}
