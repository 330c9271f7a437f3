// The ops' door to CUDA tensors: an op whose arguments are CudaTensors runs its device kernels
// (matmul → cuBLAS, the rest → ffi/cuda's PTX kernels, through the table of ffi/cuda/dispatch.ts)
// and, when an input is recorded by a device tape (a valueAndGrad call on device params),
// records a backward that runs on the device too. Arguments on two devices are an error naming
// both. The device ops are the ones the MNIST MLP needs: matmul (with bias, NN/NT/TN, f32 or
// half operands), relu, same-shape add and mul, scale, sum and mean of all elements, and the
// mean softmax cross-entropy; any other op refuses a device tensor in its argument check
// (core/tensor.ts's checkTensor), naming the op and the device.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import { isHalf } from "../core/castInto.ts";
import { type AnyTensor, CudaTensor, checkSameDevice } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { shapeStr, typeName } from "../core/tensor.ts";
import { deviceTapeFor } from "./deviceTape.ts";

/** matmul's options on a device (bias a CudaTensor). */
export interface DeviceMatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: CudaTensor;
}

/** Every argument a live CudaTensor on one device (the error names both devices otherwise). */
function onOneDevice(op: string, args: readonly (readonly [string, AnyTensor | undefined])[]): number {
  const device = checkSameDevice(op, args);
  for (const [name, t] of args) {
    if (t === undefined) continue;
    if (!(t instanceof CudaTensor))
      throw new TypeError(`plait: ${op}: argument ${name} must be a tensor, got ${typeName(t)}`);
    if (t.disposed) throw new Error(`plait: ${op}: argument ${name} (${t.describe()}) was used after dispose()`);
  }
  return Number(device.slice(5));
}

function needF32(op: string, name: string, t: CudaTensor): void {
  if (t.dtype !== "f32")
    throw new TypeError(
      `plait: ${op} on ${t.device}: argument ${name} has dtype ${t.dtype}, expected f32 (the device kernels are f32)`,
    );
}

/**
 * matmul for CUDA tensors: same device for a, b and bias, then cuBLAS. A half operand (f16/bf16,
 * a mixed-precision compute copy) makes the product run in that dtype: the other operand is
 * rounded to it at the input (castOn), cuBLAS multiplies with f32 accumulation, C is f32 — the
 * CPU rule (ops/linear.ts). Recorded inputs get d op(a) = G·op(b)ᵀ and d op(b) = op(a)ᵀ·G, each
 * one cuBLAS call written or accumulated (beta = 1) into the gradient buffer, and the bias the
 * column sums of G; under a half product G is rounded to the half dtype first.
 */
export function deviceMatmul(a: AnyTensor, b: AnyTensor, opts: DeviceMatmulOptions | { bias?: AnyTensor }): CudaTensor {
  const {
    transA = false,
    transB = false,
    bias,
  } = checkOptions("matmul", opts as DeviceMatmulOptions, ["transA", "transB", "bias"]);
  onOneDevice("matmul", [
    ["a", a],
    ["b", b],
    ["bias", bias],
  ]);
  const A = a as CudaTensor;
  const B = b as CudaTensor;
  const C = bias as CudaTensor | undefined;
  const k = deviceKernels();
  const half = isHalf(A.dtype) ? A.dtype : isHalf(B.dtype) ? B.dtype : undefined;
  for (const [name, t] of [
    ["a", A],
    ["b", B],
  ] as const) {
    if (half !== undefined ? t.dtype !== half && t.dtype !== "f32" : t.dtype !== "f32") {
      throw new TypeError(
        `plait: matmul on ${t.device}: argument ${name} has dtype ${t.dtype}; expected f32${half ? ` or ${half}` : ""} (with a half operand the other is f32 or the same half)`,
      );
    }
  }
  const a2 = half !== undefined && A.dtype !== half ? k.cast(A, half as "f16" | "bf16") : A;
  const b2 = half !== undefined && B.dtype !== half ? k.cast(B, half as "f16" | "bf16") : B;
  const rounded = [a2, b2].filter((t) => t !== A && t !== B);
  let out: CudaTensor;
  try {
    out = k.matmul(a2, b2, { transA, transB, bias: C });
  } catch (e) {
    for (const t of rounded) t.dispose();
    throw e;
  }
  const tape = deviceTapeFor(A, B, C);
  if (!tape) {
    for (const t of rounded) t.dispose();
    return out;
  }
  tape.record(
    out,
    (g, sink) => {
      const gh = half !== undefined ? k.cast(g, half as "f16" | "bf16") : g;
      try {
        const into = (x: CudaTensor, p: CudaTensor, q: CudaTensor, ta: boolean, tb: boolean) => {
          const buf = sink.buffer(x);
          if (buf) k.matmul(p, q, { transA: ta, transB: tb, out: buf.out, accumulate: buf.accumulate });
        };
        // d op(a) = G·op(b)ᵀ; for a stored transposed, its gradient is op(b)·Gᵀ
        if (transA) into(A, b2, gh, transB, true);
        else into(A, gh, b2, false, !transB);
        // d op(b) = op(a)ᵀ·G; for b stored transposed, Gᵀ·op(a)
        if (transB) into(B, gh, a2, true, transA);
        else into(B, a2, gh, !transA, false);
        if (C) {
          const buf = sink.buffer(C);
          if (buf) k.colSum(g, buf.out, buf.accumulate);
        }
      } finally {
        if (gh !== g) gh.dispose();
      }
    },
    [a2, b2],
    rounded,
  );
  return out;
}

/** max(x, 0) on a device; its backward passes g where the output is > 0 (where x > 0). */
export function deviceRelu(x: CudaTensor): CudaTensor {
  onOneDevice("relu", [["x", x]]);
  needF32("relu", "x", x);
  const k = deviceKernels();
  const y = k.relu(x);
  const tape = deviceTapeFor(x);
  if (tape) tape.record(y, (g, sink) => sink.give(x, k.reluBackward(y, g)), [y]);
  return y;
}

function binaryArgs(op: string, a: AnyTensor, b: AnyTensor): [CudaTensor, CudaTensor] {
  onOneDevice(op, [
    ["a", a],
    ["b", b],
  ]);
  const A = a as CudaTensor;
  const B = b as CudaTensor;
  needF32(op, "a", A);
  needF32(op, "b", B);
  if (A.shape.length !== B.shape.length || A.shape.some((d, i) => d !== B.shape[i])) {
    throw new RangeError(
      `plait: ${op} on ${A.device}: arguments a ${shapeStr(A.shape)} and b ${shapeStr(B.shape)} must have one shape (broadcasting runs on cpu only; a bias row goes in matmul's bias option)`,
    );
  }
  return [A, B];
}

/** a + b (one shape) on a device. */
export function deviceAdd(a: AnyTensor, b: AnyTensor): CudaTensor {
  const [A, B] = binaryArgs("add", a, b);
  const out = deviceKernels().add(A, B);
  const tape = deviceTapeFor(A, B);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        sink.give(A, g);
        sink.give(B, g);
      },
      [],
    );
  }
  return out;
}

/** a · b (one shape) on a device. */
export function deviceMul(a: AnyTensor, b: AnyTensor): CudaTensor {
  const [A, B] = binaryArgs("mul", a, b);
  const k = deviceKernels();
  const out = k.mul(A, B);
  const tape = deviceTapeFor(A, B);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        if (tape.tracks(A)) sink.give(A, k.mul(g, B));
        if (tape.tracks(B)) sink.give(B, k.mul(g, A));
      },
      [A, B],
    );
  }
  return out;
}

/** s · x on a device. */
export function deviceScale(x: CudaTensor, s: number): CudaTensor {
  onOneDevice("scale", [["x", x]]);
  needF32("scale", "x", x);
  if (typeof s !== "number") throw new TypeError(`plait: scale: argument s must be a number, got ${typeof s}`);
  const k = deviceKernels();
  const out = new CudaTensor(x.shape, "f32", x.deviceIndex);
  k.scale(x, s, out);
  const tape = deviceTapeFor(x);
  if (tape) tape.record(out, (g, sink) => sink.addScaled(x, s, g), []);
  return out;
}

/**
 * Σ x (op "sum") or Σ x / n (op "mean") of every element, a scalar f32 tensor on x's device,
 * computed there by the deterministic two-pass reduction. The backward spreads g / n over x.
 */
export function deviceReduceAll(op: "sum" | "mean", x: CudaTensor, axis?: unknown, keepDims?: unknown): CudaTensor {
  if (axis !== undefined || keepDims)
    throw new TypeError(
      `plait: ${op} on ${x.device}: reductions along axes run on cpu only; a device tensor reduces over all elements`,
    );
  onOneDevice(op, [["x", x]]);
  needF32(op, "x", x);
  const factor = op === "mean" ? 1 / x.size : 1;
  const k = deviceKernels();
  const out = new CudaTensor([], "f32", x.deviceIndex);
  k.sumTo(x, out, factor);
  const tape = deviceTapeFor(x);
  if (tape) {
    tape.record(
      out,
      (g, sink) => {
        const dx = sink.buffer(x);
        if (dx) k.scaleBy(undefined, g, factor, dx.out, dx.accumulate);
      },
      [],
    );
  }
  return out;
}

/**
 * The mean softmax cross-entropy of f32 logits [rows, cols] against i32 labels [rows] on a
 * device: a scalar f32 tensor there. The fused kernel writes the per-row losses and
 * (softmax − onehot)/rows in one pass; recorded, the latter is kept and the backward scales it
 * by the output gradient on the device. A label outside [0, cols) gives a NaN loss (the kernel
 * does not read out of bounds; the CPU op throws instead, which would need a host read here).
 */
export function deviceSoftmaxCrossEntropy(logits: AnyTensor, labels: AnyTensor): CudaTensor {
  const op = "softmaxCrossEntropy";
  onOneDevice(op, [
    ["logits", logits],
    ["labels", labels],
  ]);
  const L = logits as CudaTensor;
  const Y = labels as CudaTensor;
  needF32(op, "logits", L);
  if (Y.dtype !== "i32") throw new TypeError(`plait: ${op}: argument labels has dtype ${Y.dtype}, expected i32`);
  if (L.ndim !== 2 || Y.ndim !== 1 || Y.shape[0] !== L.shape[0]) {
    throw new RangeError(
      `plait: ${op}: logits must be [rows, cols] and labels [rows] (one label per row), got ${shapeStr(L.shape)} and ${shapeStr(Y.shape)}`,
    );
  }
  const rows = L.shape[0];
  if (rows === 0)
    throw new RangeError(`plait: ${op}: argument logits has no rows; the mean over an empty batch is undefined`);
  const k = deviceKernels();
  const { loss, dlogits } = k.softmaxXent(L, Y, 1 / rows);
  const out = new CudaTensor([], "f32", L.deviceIndex);
  try {
    k.sumTo(loss, out, 1 / rows);
  } finally {
    loss.dispose();
  }
  const tape = deviceTapeFor(L);
  if (!tape) {
    dlogits.dispose();
    return out;
  }
  tape.record(
    out,
    (g, sink) => {
      const dx = sink.buffer(L);
      if (dx) k.scaleBy(dlogits, g, 1, dx.out, dx.accumulate);
    },
    [dlogits],
    [dlogits],
  );
  return out;
}

/**
 * A cast on a device (f32 ↔ f16/bf16): not differentiable there, so a recorded input is refused
 * (naming the op and the device) instead of giving a zero gradient.
 */
export function deviceCast(x: CudaTensor, dtype: DType): CudaTensor {
  onOneDevice("cast", [["x", x]]);
  if (deviceTapeFor(x)) {
    throw new Error(
      `plait: cast on ${x.device} has no backward: its argument x is recorded for a gradient (cast the params before the step, as withAMP does, or run the cast on cpu)`,
    );
  }
  const pair = `${x.dtype}→${dtype}`;
  if (!["f32→f16", "f32→bf16", "f16→f32", "bf16→f32"].includes(pair))
    throw new TypeError(`plait: cast on ${x.device}: ${pair} is not supported; f32 ↔ f16 and f32 ↔ bf16 are`);
  return deviceKernels().cast(x, dtype as "f32" | "f16" | "bf16");
}
