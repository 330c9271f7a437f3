import * as core from "../core/arith.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { addRows, colSums } from "./broadcast.ts";
import { asMatrix, checkDTypeIn, checkInput, checkSameDType, sameShape } from "./check.ts";
import { type GradSink, tapeFor } from "./tape.ts";

const FLOATS = ["f32", "f64"] as const;

/**
 * a + b elementwise. b has a's shape, or is a row ([n] or [1, n], n = a's last axis) added to
 * every row of a (a dense layer's bias); its gradient is then the column sums of a's.
 */
export function add(a: Tensor, b: Tensor): Tensor {
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
  if (!isRow) {
    throw new RangeError(
      `plait: ${op}: argument b has shape ${shapeStr(b.shape)}, expected ${shapeStr(a.shape)} like a, or a row [${cols}] to add to each row of a`,
    );
  }
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

/** a − b elementwise (same shapes). */
export function sub(a: Tensor, b: Tensor): Tensor {
  const op = "sub";
  checkOperands(op, a, b);
  checkSame(op, a, b);
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

/** a · b elementwise (same shapes). */
export function mul(a: Tensor, b: Tensor): Tensor {
  const op = "mul";
  checkOperands(op, a, b);
  checkSame(op, a, b);
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
 * a / b elementwise (same shapes; IEEE: x/0 = ±inf, 0/0 = NaN). Gradients: g / b for a and
 * −g · (a/b) / b for b (from the saved quotient, so a itself is not kept).
 */
export function div(a: Tensor, b: Tensor): Tensor {
  const op = "div";
  checkOperands(op, a, b);
  checkSame(op, a, b);
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
export function scale(x: Tensor, s: number): Tensor {
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
