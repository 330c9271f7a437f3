import type { Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput, checkSameDType, checkSameShape } from "./check.ts";
import { checkLoss } from "./loss.ts";
import { readScalar, scalar } from "./scalar.ts";
import { tapeFor } from "./tape.ts";

// Regression losses as float64 loops over f32 or f64 inputs (mse, with its kernel, is in loss.ts).

/**
 * Mean absolute error (1/n) Σ |pred − target|: a scalar. Gradient: sign(pred − target)/n for
 * pred (0 where they are equal, a subgradient) and the negative for target.
 */
export function l1(pred: Tensor, target: Tensor): Tensor {
  return pointwise("l1", pred, target, Math.abs, Math.sign);
}

/**
 * Mean Huber loss (torch's HuberLoss): for d = pred − target, ½d² where |d| ≤ delta, else
 * delta·(|d| − ½delta); `delta` > 0 (default 1). Gradient: d clipped to [−delta, delta], / n.
 */
export function huber(pred: Tensor, target: Tensor, delta = 1): Tensor {
  if (typeof delta !== "number" || !(delta > 0)) {
    throw new RangeError(`plait: huber: argument delta must be a number > 0, got ${String(delta)}`);
  }
  return pointwise(
    "huber",
    pred,
    target,
    (d) => (Math.abs(d) <= delta ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta)),
    (d) => Math.max(-delta, Math.min(delta, d)),
  );
}

function pointwise(
  op: string,
  pred: Tensor,
  target: Tensor,
  f: (d: number) => number,
  df: (d: number) => number,
): Tensor {
  checkInput(op, "pred", pred);
  checkInput(op, "target", target);
  const dtype = checkDTypeIn(op, "pred", pred, ["f32", "f64"]);
  checkSameDType(op, "target", target, "pred", pred);
  checkSameShape(op, "target", target, "pred", pred);
  const n = pred.size;
  if (n === 0) throw new RangeError(`plait: ${op}: argument pred is empty; the mean over no elements is undefined`);
  const ps = pred.data();
  const ts = target.data();
  let total = 0;
  for (let i = 0; i < n; i++) total += f(ps[i] - ts[i]);
  checkLoss(op, total / n);
  const out = scalar(total / n, dtype);
  const tape = tapeFor(pred, target);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const scale = readScalar(g) / n;
        const pv = pred.data();
        const tv = target.data();
        for (const [x, sign] of [
          [pred, 1],
          [target, -1],
        ] as const) {
          sink.assign(x, (dx) => {
            const d = dx.data();
            for (let i = 0; i < n; i++) d[i] = sign * scale * df(pv[i] - tv[i]);
          });
        }
      },
      [pred, target],
    );
  }
  return out;
}
