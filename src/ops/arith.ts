import * as core from "../core/arith.ts";
import { CudaTensor } from "../core/device.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { addRows, colSums } from "./broadcast.ts";
import { asMatrix, checkDTypeIn, checkInput, checkSameDType, sameShape } from "./check.ts";
import { deviceAdd, deviceMul, deviceScale } from "./cuda.ts";
import { broadcastShapes, expandTo, sumTo } from "./strided.ts";
import { type GradSink, tapeFor } from "./tape.ts";

const FLOATS = ["f32", "f64"] as const;

/**
 * a + b elementwise, with numpy broadcasting: shapes are aligned at the last axis and each axis
 * is equal or 1 (a missing or size-1 axis repeats); the result has the broadcast shape. A row
 * b ([n] or [1, n], n = a's last axis; a dense layer's bias) takes a fused kernel, its gradient
 * the column sums of the output's. A broadcast operand's gradient is the output gradient
 * summed over the axes it was repeated along.
 */
export function add(a: Tensor, b: Tensor): Tensor;
export function add(a: CudaTensor, b: CudaTensor): CudaTensor;
export function add(a: Tensor | CudaTensor, b: Tensor | CudaTensor): Tensor | CudaTensor {
  if (a instanceof CudaTensor || b instanceof CudaTensor) return deviceAdd(a, b); // ops/cuda.ts
  const op = "add";
  checkOperands(op, a, b);
  if (sameShape(a.shape, b.shape)) {
    const out = core.add(a, b);
    const tape = tapeFor(a, b);
    if (tape) {
      tape.record(
        out,
        (g, sink) => {
          sink.give(a, g);
          sink.give(b, g);
        },
        [],
      );
    }
    return out;
  }
  const [rows, cols] = asMatrix(a);
  const isRow = a.ndim >= 1 && b.size === cols && (b.ndim === 1 || (b.ndim === 2 && b.shape[0] === 1));
  if (!isRow) return broadcastBinary(op, a, b);
  const out = new Tensor(a.shape, a.dtype);
  addRows(a, b, out, rows, cols);
  const tape = tapeFor(a, b);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const db = sink.buffer(b);
        if (db) colSums(g, db.out, rows, cols, db.accumulate);
        sink.give(a, g);
      },
      [],
    );
  }
  return out;
}

/** a − b elementwise, with numpy broadcasting (see add). */
export function sub(a: Tensor, b: Tensor): Tensor {
  const op = "sub";
  checkOperands(op, a, b);
  if (!sameShape(a.shape, b.shape)) return broadcastBinary(op, a, b);
  const out = core.sub(a, b);
  const tape = tapeFor(a, b);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        sink.addScaled(b, -1, g);
        sink.give(a, g);
      },
      [],
    );
  }
  return out;
}

/** a · b elementwise, with numpy broadcasting (see add). */
export function mul(a: Tensor, b: Tensor): Tensor;
export function mul(a: CudaTensor, b: CudaTensor): CudaTensor;
export function mul(a: Tensor | CudaTensor, b: Tensor | CudaTensor): Tensor | CudaTensor {
  if (a instanceof CudaTensor || b instanceof CudaTensor) return deviceMul(a, b); // ops/cuda.ts
  const op = "mul";
  checkOperands(op, a, b);
  if (!sameShape(a.shape, b.shape)) return broadcastBinary(op, a, b);
  const out = core.mul(a, b);
  const tape = tapeFor(a, b);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        productGrad(a, b, g, sink);
        productGrad(b, a, g, sink);
      },
      [a, b],
    );
  }
  return out;
}

/**
 * a / b elementwise, with numpy broadcasting (see add; IEEE: x/0 = ±inf, 0/0 = NaN). Gradients:
 * g / b for a and −g · (a/b) / b for b (from the saved quotient, so a itself is not kept).
 */
export function div(a: Tensor, b: Tensor): Tensor {
  const op = "div";
  checkOperands(op, a, b);
  if (!sameShape(a.shape, b.shape)) return broadcastBinary(op, a, b);
  const out = core.div(a, b);
  const tape = tapeFor(a, b);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        sink.assign(a, (da) => core.div(g, b, da));
        sink.assign(b, (db) => {
          core.mul(g, out, db);
          core.div(db, b, db);
          core.scale(db, -1, db);
        });
      },
      [b, out],
    );
  }
  return out;
}

/** a · b + c elementwise (same shapes; one rounding where the relaxed-SIMD build fuses it). */
export function fma(a: Tensor, b: Tensor, c: Tensor): Tensor {
  const op = "fma";
  checkOperands(op, a, b);
  checkInput(op, "c", c);
  checkSameDType(op, "c", c, "a", a);
  checkSame(op, a, b);
  if (!sameShape(a.shape, c.shape)) {
    throw new RangeError(
      `plait: ${op}: argument c has shape ${shapeStr(c.shape)}, expected ${shapeStr(a.shape)} like a`,
    );
  }
  const out = core.fma(a, b, c);
  const tape = tapeFor(a, b, c);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        productGrad(a, b, g, sink);
        productGrad(b, a, g, sink);
        sink.give(c, g);
      },
      [a, b],
    );
  }
  return out;
}

/** s · x elementwise for a number s. */
export function scale(x: Tensor, s: number): Tensor;
export function scale(x: CudaTensor, s: number): CudaTensor;
export function scale(x: Tensor | CudaTensor, s: number): Tensor | CudaTensor {
  if (x instanceof CudaTensor) return deviceScale(x, s); // ops/cuda.ts
  const op = "scale";
  checkInput(op, "x", x);
  checkDTypeIn(op, "x", x, FLOATS);
  if (typeof s !== "number") throw new TypeError(`plait: ${op}: argument s must be a number, got ${typeof s}`);
  const out = core.scale(x, s);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(out, (g, sink) => sink.addScaled(x, s, g), []);
  }
  return out;
}

/** x's gradient term g · other of a product x · other. */
function productGrad(x: Tensor, other: Tensor, g: Tensor, sink: GradSink): void {
  const dx = sink.buffer(x);
  if (!dx) return;
  if (dx.accumulate) core.fma(g, other, dx.out, dx.out);
  else core.mul(g, other, dx.out);
}

type Binary = "add" | "sub" | "mul" | "div";

/**
 * op(a, b) for shapes that differ but broadcast: both operands are expanded to the broadcast
 * shape (copies, kept for the backward only where it reads them), the same-shape kernel runs,
 * and each operand's full-shape gradient is summed back to its own shape (in float64).
 */
function broadcastBinary(op: Binary, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, [a.shape, b.shape], ["a", "b"]);
  const ae = expandTo(a, shape);
  const be = expandTo(b, shape);
  const out = { add: core.add, sub: core.sub, mul: core.mul, div: core.div }[op](ae, be);
  const made = [ae, be].filter((t) => t !== a && t !== b);
  const tape = tapeFor(a, b);
  if (!tape) {
    for (const t of made) t.dispose();
    return out;
  }
  // d/da and d/db of op, each written into a tensor of the broadcast shape.
  const full: Record<Binary, [(g: Tensor, o: Tensor) => void, (g: Tensor, o: Tensor) => void]> = {
    add: [(g, o) => core.scale(g, 1, o), (g, o) => core.scale(g, 1, o)],
    sub: [(g, o) => core.scale(g, 1, o), (g, o) => core.scale(g, -1, o)],
    mul: [(g, o) => core.mul(g, be, o), (g, o) => core.mul(g, ae, o)],
    div: [
      (g, o) => core.div(g, be, o),
      (g, o) => {
        core.mul(g, out, o);
        core.div(o, be, o);
        core.scale(o, -1, o);
      },
    ],
  };
  const saves = op === "mul" ? [ae, be] : op === "div" ? [be, out] : [];
  tape.record(
    out,
    (g, sink) => {
      for (const [x, grad] of [
        [a, full[op][0]],
        [b, full[op][1]],
      ] as const) {
        sink.assign(x, (dx) => {
          if (sameShape(x.shape, shape)) return grad(g, dx);
          const f = new Tensor(shape, g.dtype);
          grad(g, f);
          sumTo(f, dx);
          f.dispose();
        });
      }
    },
    saves,
    made,
  );
  return out;
}

function checkOperands(op: string, a: Tensor, b: Tensor): void {
  checkInput(op, "a", a);
  checkInput(op, "b", b);
  checkDTypeIn(op, "a", a, FLOATS);
  checkSameDType(op, "b", b, "a", a);
}

function checkSame(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new RangeError(
      `plait: ${op}: argument b has shape ${shapeStr(b.shape)}, expected ${shapeStr(a.shape)} like a`,
    );
  }
}
