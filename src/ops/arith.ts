import * as core from "../core/arith.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { addRows, colSums } from "./broadcast.ts";
import { asMatrix, checkDTypeIn, checkSameDType, checkTensor, sameShape } from "./check.ts";
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
        const db = sink.buffer(b);
        if (db) {
          if (db.accumulate) core.axpy(-1, g, db.out);
          else core.scale(g, -1, db.out);
        }
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
    const grad = (x: Tensor, other: Tensor, g: Tensor, sink: GradSink) => {
      const dx = sink.buffer(x);
      if (!dx) return;
      if (dx.accumulate) core.fma(g, other, dx.out, dx.out);
      else core.mul(g, other, dx.out);
    };
    tape.record(
      out,
      (g, sink) => {
        grad(a, b, g, sink);
        grad(b, a, g, sink);
      },
      [a, b],
    );
  }
  return out;
}

/** s · x elementwise for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  const op = "scale";
  checkTensor(op, "x", x);
  checkDTypeIn(op, "x", x, FLOATS);
  if (typeof s !== "number") throw new TypeError(`plait: ${op}: argument s must be a number, got ${typeof s}`);
  const out = core.scale(x, s);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        if (dx.accumulate) core.axpy(s, g, dx.out);
        else core.scale(g, s, dx.out);
      },
      [],
    );
  }
  return out;
}

function checkOperands(op: string, a: Tensor, b: Tensor): void {
  checkTensor(op, "a", a);
  checkTensor(op, "b", b);
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
