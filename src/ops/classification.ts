import * as portable from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import { shapeStr, type Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput, checkSameDType, checkSameShape } from "./check.ts";
import { checkLoss } from "./loss.ts";
import { readScalar, scalar } from "./scalar.ts";
import { tapeFor } from "./tape.ts";

// Classification losses as float64 loops over f32 or f64 inputs, each a scalar of the input's
// dtype. Logit losses are stable (max-subtracted log-sum-exp; softplus through log1p(e^−|x|)),
// and their backward passes recompute from the saved logits. Non-finite inputs give a
// non-finite loss (for a loss scaler to skip the step), as the other losses do; in anomaly mode
// a loss that overflows from finite inputs is an error.

// Math.exp, Math.log and Math.log1p differ in the last bit between V8 and JavaScriptCore:
// deterministic mode (configure({ deterministic: true })) takes the portable ones.
const exp = (x: number) => (deterministic() ? portable.exp(x) : Math.exp(x));
const log = (x: number) => (deterministic() ? portable.log(x) : Math.log(x));
const log1p = (x: number) => (deterministic() ? portable.log1p(x) : Math.log1p(x));

const FLOATS = ["f32", "f64"] as const;

export interface CrossEntropyOptions {
  /**
   * ε in [0, 1]: the target is (1 − ε)·onehot + ε/C (torch's label_smoothing), so the loss is
   * (1 − ε)·(−log p_y) + ε·mean_c(−log p_c). Default 0.
   */
  labelSmoothing?: number;
  /** Rows whose label equals this contribute nothing and are left out of the mean (torch's ignore_index). */
  ignoreIndex?: number;
}

/**
 * Mean softmax cross-entropy of `logits` [...batch, C] (f32 or f64) against i32 class indices
 * `labels` [...batch], each in [0, C) or equal to `ignoreIndex`; the mean runs over the rows
 * not ignored (NaN when every row is ignored, as torch). Gradient for logits:
 * (softmax − target) / count, target = (1 − ε)·onehot + ε/C; ignored rows get 0.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return classLoss("crossEntropy", logits, labels, opts, true);
}

/**
 * Mean negative log-likelihood −logProbs[i, labels[i]] of log-probabilities `logProbs`
 * [...batch, C] (e.g. logSoftmax's output; f32 or f64) against i32 `labels` [...batch], over
 * the rows whose label is not `ignoreIndex` (NaN when all are). Gradient: −1/count at each
 * row's label, 0 elsewhere.
 */
export function nll(logProbs: Tensor, labels: Tensor, opts: { ignoreIndex?: number } = {}): Tensor {
  return classLoss("nll", logProbs, labels, opts, false);
}

function classLoss(op: string, x: Tensor, labels: Tensor, opts: CrossEntropyOptions, fromLogits: boolean): Tensor {
  const arg = fromLogits ? "logits" : "logProbs";
  checkInput(op, arg, x);
  checkInput(op, "labels", labels);
  const dtype = checkDTypeIn(op, arg, x, FLOATS);
  checkDTypeIn(op, "labels", labels, ["i32"]);
  const eps = opts.labelSmoothing ?? 0;
  const ignore = opts.ignoreIndex;
  if (typeof eps !== "number" || !(eps >= 0 && eps <= 1)) {
    throw new RangeError(`plait: ${op}: option labelSmoothing must be a number in [0, 1], got ${String(eps)}`);
  }
  if (ignore !== undefined && !Number.isInteger(ignore)) {
    throw new TypeError(`plait: ${op}: option ignoreIndex must be an integer, got ${String(ignore)}`);
  }
  if (x.ndim === 0) throw new RangeError(`plait: ${op}: argument ${arg} must have a class axis, got shape []`);
  const C = x.shape[x.ndim - 1];
  const batch = x.shape.slice(0, -1);
  if (labels.ndim !== batch.length || labels.shape.some((d, i) => d !== batch[i])) {
    throw new RangeError(
      `plait: ${op}: argument labels has shape ${shapeStr(labels.shape)}, expected ${shapeStr(batch)} (one per row of ${arg} ${shapeStr(x.shape)}; rule: ${arg} [...batch, C], labels [...batch])`,
    );
  }
  const rows = labels.size;
  if (rows === 0)
    throw new RangeError(`plait: ${op}: argument ${arg} has no rows; the mean over an empty batch is undefined`);
  const ys = labels.data();
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const y = ys[r];
    if (y === ignore) continue;
    if (!(y >= 0 && y < C)) {
      const also = ignore === undefined ? "" : ` or the ignoreIndex ${ignore}`;
      throw new RangeError(`plait: ${op}: argument labels[${r}] is ${y}, expected a class index in [0, ${C})${also}`);
    }
    count++;
  }
  const xs = x.data();
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (ys[r] === ignore) continue;
    const base = r * C;
    const lse = fromLogits ? logSumExpRow(xs, base, C) : 0;
    let loss = -(1 - eps) * (xs[base + ys[r]] - lse);
    if (eps > 0) {
      let s = 0;
      for (let c = 0; c < C; c++) s += xs[base + c] - lse;
      loss -= (eps / C) * s;
    }
    total += loss;
  }
  if (count > 0) checkLoss(op, total / count);
  const out = scalar(total / count, dtype);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) =>
        sink.assign(x, (dx) => {
          const d = dx.data();
          d.fill(0);
          const scale = readScalar(g) / count;
          const xv = x.data();
          const yv = labels.data();
          for (let r = 0; r < rows; r++) {
            if (yv[r] === ignore) continue;
            const base = r * C;
            if (fromLogits) {
              const lse = logSumExpRow(xv, base, C);
              for (let c = 0; c < C; c++) d[base + c] = scale * (exp(xv[base + c] - lse) - eps / C);
            } else if (eps > 0) for (let c = 0; c < C; c++) d[base + c] = (-scale * eps) / C;
            d[base + yv[r]] -= scale * (1 - eps);
          }
        }),
      [x, labels],
    );
  }
  return out;
}

function logSumExpRow(xs: ArrayLike<number>, base: number, n: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < n; c++) if (xs[base + c] > m || Number.isNaN(xs[base + c])) m = xs[base + c];
  if (Number.isNaN(m)) return m;
  const shift = Number.isFinite(m) ? m : 0;
  let s = 0;
  for (let c = 0; c < n; c++) s += exp(xs[base + c] - shift);
  return shift + log(s);
}

/**
 * Mean binary cross-entropy of `logits` against `targets` (probabilities in [0, 1], same shape
 * and dtype; f32 or f64) over all elements, in the stable form
 * max(x, 0) − x·t + log(1 + e^−|x|) (torch's BCEWithLogitsLoss). Gradients:
 * (σ(x) − t)/n for the logits and −x/n for the targets.
 */
export function bceWithLogits(logits: Tensor, targets: Tensor): Tensor {
  const op = "bceWithLogits";
  checkInput(op, "logits", logits);
  checkInput(op, "targets", targets);
  const dtype = checkDTypeIn(op, "logits", logits, FLOATS);
  checkSameDType(op, "targets", targets, "logits", logits);
  checkSameShape(op, "targets", targets, "logits", logits);
  const n = logits.size;
  if (n === 0) throw new RangeError(`plait: ${op}: argument logits is empty; the mean over no elements is undefined`);
  const xs = logits.data();
  const ts = targets.data();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = xs[i];
    total += Math.max(x, 0) - x * ts[i] + log1p(exp(-Math.abs(x)));
  }
  checkLoss(op, total / n);
  const out = scalar(total / n, dtype);
  const tape = tapeFor(logits, targets);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const scale = readScalar(g) / n;
        const xv = logits.data();
        const tv = targets.data();
        sink.assign(logits, (dx) => {
          const d = dx.data();
          for (let i = 0; i < n; i++) d[i] = scale * (sigmoid(xv[i]) - tv[i]);
        });
        sink.assign(targets, (dt) => {
          const d = dt.data();
          for (let i = 0; i < n; i++) d[i] = -scale * xv[i];
        });
      },
      [logits, targets],
    );
  }
  return out;
}

function sigmoid(x: number): number {
  const z = exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + z) : z / (1 + z);
}
