import * as portable from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import * as core from "../core/softmax.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { asMatrix, checkDTypeIn, checkInput } from "./check.ts";
import { permute } from "./permute.ts";
import { normAxis } from "./strided.ts";
import { tapeFor } from "./tape.ts";

// softmax and log-softmax along the last axis (leading axes are rows), f32 and f64; another
// axis is permuted to the last and back. f32 runs
// the SIMD kernels; f64 has none and runs a plain loop here. Both backward passes are row
// loops that read the saved output y (sums in float64):
//   softmax:    dx_j = y_j · (g_j − Σ_k g_k y_k)
//   logSoftmax: dx_j = g_j − e^{y_j} · Σ_k g_k
// A row with NaN or +inf, or only −inf, comes out all NaN (as the kernels do).

/**
 * exp(x − max) / Σ exp(x − max) along `axis` (default the last; negative counts from the end).
 * The last axis runs the row kernels; another axis is moved last (permute), done there and
 * moved back.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis("softmax", x, axis, false);
}

/** x − max − ln Σ exp(x − max) along `axis` (default the last), as softmax. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis("logSoftmax", x, axis, true);
}

function alongAxis(op: string, x: Tensor, axis: number, isLog: boolean): Tensor {
  checkInput(op, "x", x);
  if (x.ndim === 0 || axis === -1 || axis === x.ndim - 1) return rowwise(op, x, isLog);
  const k = normAxis(op, axis, x.shape);
  if (k === x.ndim - 1) return rowwise(op, x, isLog);
  const order = x.shape.map((_d, i) => i);
  order.splice(k, 1);
  order.push(k);
  const back = x.shape.map((_d, i) => (i < k ? i : i === k ? x.ndim - 1 : i - 1));
  const moved = permute(x, order);
  const y = rowwise(op, moved, isLog);
  const out = permute(y, back);
  if (!tapeFor(x)) {
    moved.dispose();
    y.dispose();
  }
  return out;
}

function rowwise(op: string, x: Tensor, isLog: boolean): Tensor {
  checkInput(op, "x", x);
  const dtype = checkDTypeIn(op, "x", x, ["f32", "f64"]);
  if (x.ndim === 0)
    throw new RangeError(`plait: ${op}: argument x must have at least 1 axis, got shape ${shapeStr([])}`);
  const [rows, cols] = asMatrix(x);
  let y: Tensor;
  if (dtype === "f32") y = isLog ? core.logSoftmax(x) : core.softmax(x);
  else {
    y = new Tensor(x.shape, "f64");
    forwardF64(x.data(), y.data(), rows, cols, isLog);
  }
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      y,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (!dx) return;
        backward(y.data(), g.data(), dx.out.data(), rows, cols, isLog, dx.accumulate);
      },
      [y],
    );
  }
  return y;
}

type Floats = ArrayLike<number> & { [i: number]: number };

function forwardF64(xs: Floats, ys: Floats, rows: number, cols: number, isLog: boolean): void {
  const [exp, log] = deterministic() ? [portable.exp, portable.log] : [Math.exp, Math.log];
  for (let r = 0, base = 0; r < rows; r++, base += cols) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < cols; j++) {
      const v = xs[base + j];
      if (v > m || Number.isNaN(v)) m = v;
      if (Number.isNaN(m)) break;
    }
    let s = 0;
    for (let j = 0; j < cols; j++) s += exp(xs[base + j] - m);
    if (isLog) {
      const shift = m + log(s);
      for (let j = 0; j < cols; j++) ys[base + j] = xs[base + j] - shift;
    } else {
      for (let j = 0; j < cols; j++) ys[base + j] = exp(xs[base + j] - m) / s;
    }
  }
}

function backward(
  ys: Floats,
  gs: Floats,
  ds: Floats,
  rows: number,
  cols: number,
  isLog: boolean,
  accumulate: boolean,
): void {
  const exp = deterministic() ? portable.exp : Math.exp;
  for (let r = 0, base = 0; r < rows; r++, base += cols) {
    let dot = 0;
    if (isLog) for (let j = 0; j < cols; j++) dot += gs[base + j];
    else for (let j = 0; j < cols; j++) dot += gs[base + j] * ys[base + j];
    for (let j = 0; j < cols; j++) {
      const i = base + j;
      const d = isLog ? gs[i] - exp(ys[i]) * dot : ys[i] * (gs[i] - dot);
      ds[i] = accumulate ? ds[i] + d : d;
    }
  }
}
