import { CudaTensor } from "../core/device.ts";
import { detectingAnomalies } from "../core/runtime.ts";
import { shapeStr, type Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput, checkRank, checkSameDType, checkSameShape } from "./check.ts";
import { deviceSoftmaxCrossEntropy } from "./cuda.ts";
import { as } from "./kernels.ts";
import { readScalar, scalar } from "./scalar.ts";
import { tapeFor } from "./tape.ts";

const FLOATS = ["f32", "f64"] as const;

/**
 * Mean softmax cross-entropy of `logits` [batch, classes] against integer `labels` [batch]
 * (i32, each in [0, classes)): a scalar. Fused and stable (max-subtracted log-sum-exp); the
 * backward pass gives (softmax − onehot) / batch. Non-finite logits give a non-finite loss and
 * gradients (for a loss scaler to skip the step), unless anomaly mode is on.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor;
export function softmaxCrossEntropy(logits: CudaTensor, labels: CudaTensor): CudaTensor;
export function softmaxCrossEntropy(logits: Tensor | CudaTensor, labels: Tensor | CudaTensor): Tensor | CudaTensor {
  if (logits instanceof CudaTensor || labels instanceof CudaTensor) return deviceSoftmaxCrossEntropy(logits, labels); // ops/cuda.ts
  const op = "softmaxCrossEntropy";
  checkInput(op, "logits", logits);
  checkInput(op, "labels", labels);
  const dtype = checkDTypeIn(op, "logits", logits, FLOATS);
  checkRank(op, "logits", logits, 2);
  checkDTypeIn(op, "labels", labels, ["i32"]);
  checkRank(op, "labels", labels, 1);
  const [rows, cols] = logits.shape;
  if (labels.size !== rows) {
    throw new RangeError(
      `plait: ${op}: argument labels has ${labels.size} labels, expected ${rows} (one per row of logits ${shapeStr(logits.shape)})`,
    );
  }
  if (rows === 0)
    throw new RangeError(`plait: ${op}: argument logits has no rows; the mean over an empty batch is undefined`);
  const k = as();
  const bad = k.first_outside_i32(labels.ptr, rows, cols);
  if (bad >= 0) {
    throw new RangeError(
      `plait: ${op}: argument labels[${bad}] is ${labels.data()[bad]}, expected a class index in [0, ${cols})`,
    );
  }
  const fn = dtype === "f32" ? k.softmax_xent_f32 : k.softmax_xent_f64;
  const value: number = fn(logits.ptr, labels.ptr, rows, cols, 0, 0);
  checkLoss(op, value);
  const out = scalar(value, dtype);
  const tape = tapeFor(logits);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dscale = readScalar(g) / rows;
        sink.assign(logits, (dx) => fn(logits.ptr, labels.ptr, rows, cols, dx.ptr, dscale));
      },
      [logits],
    );
  }
  return out;
}

/**
 * Mean squared error (1/n) Σ (pred − target)² over all elements: a scalar. Non-finite inputs
 * (or an overflowing sum) give a non-finite loss and gradients, unless anomaly mode is on.
 */
export function mse(pred: Tensor, target: Tensor): Tensor {
  const op = "mse";
  checkInput(op, "pred", pred);
  checkInput(op, "target", target);
  const dtype = checkDTypeIn(op, "pred", pred, FLOATS);
  checkSameDType(op, "target", target, "pred", pred);
  checkSameShape(op, "target", target, "pred", pred);
  const n = pred.size;
  if (n === 0) throw new RangeError(`plait: ${op}: argument pred is empty; the mean over no elements is undefined`);
  const fn = dtype === "f32" ? as().mse_f32 : as().mse_f64;
  const value: number = fn(pred.ptr, target.ptr, n, 0, 0);
  checkLoss(op, value);
  const out = scalar(value, dtype);
  const tape = tapeFor(pred, target);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dscale = (2 * readScalar(g)) / n;
        sink.assign(pred, (dp) => fn(pred.ptr, target.ptr, n, dp.ptr, dscale));
        sink.assign(target, (dt) => fn(target.ptr, pred.ptr, n, dt.ptr, dscale));
      },
      [pred, target],
    );
  }
  return out;
}

/**
 * Anomaly mode only: a non-finite loss is an error. Its inputs were scanned already (checkInput),
 * so the loss itself overflowed.
 */
export function checkLoss(op: string, value: number): void {
  if (Number.isFinite(value) || !detectingAnomalies()) return;
  throw new RangeError(
    `plait: ${op}: the loss overflowed to ${value} though every input is finite (anomaly mode: configure({ detectAnomaly: true }))`,
  );
}
