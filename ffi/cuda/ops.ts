// The PTX kernels as functions of CudaTensors: casts, the fused unscale + finite check, the
// fused SGD and Adam/AdamW steps, elementwise ops and their backward forms, and row softmax
// cross-entropy. Each checks its arguments (one device, dtypes, sizes), queues one launch on the
// device's stream and returns at once; results are read back with .to("cpu") or toArray().
import { CudaTensor, checkSameDevice } from "../../src/core/device.ts";
import type { DType } from "../../src/core/dtype.ts";
import { shapeStr } from "../../src/core/tensor.ts";
import { deviceStream } from "./backend.ts";
import { gridFor, launchKernel } from "./kernels.ts";
import { memcpyDtoH, memsetAsync, streamSynchronize } from "./runtime.ts";

function check(op: string, args: Record<string, CudaTensor | undefined>, dtypes: Record<string, DType>): number {
  for (const [name, t] of Object.entries(args)) {
    if (t === undefined) continue;
    if (!(t instanceof CudaTensor))
      throw new TypeError(`plait: ${op}: argument ${name} must be a tensor on a CUDA device`);
    if (t.disposed) throw new Error(`plait: ${op}: argument ${name} (${t.describe()}) was used after dispose()`);
    const want = dtypes[name];
    if (want && t.dtype !== want)
      throw new TypeError(`plait: ${op}: argument ${name} has dtype ${t.dtype}, expected ${want}`);
  }
  checkSameDevice(op, Object.entries(args));
  return Object.values(args).find((t) => t !== undefined)!.deviceIndex;
}

function sameSize(op: string, ref: [string, CudaTensor], ...others: [string, CudaTensor | undefined][]): void {
  for (const [name, t] of others) {
    if (t !== undefined && t.size !== ref[1].size)
      throw new RangeError(
        `plait: ${op}: argument ${name} has ${t.size} elements (shape ${shapeStr(t.shape)}), expected ${ref[1].size} like ${ref[0]}`,
      );
  }
}

const run = (kernel: string, dev: number, n: number, args: (number | bigint)[]) =>
  launchKernel(kernel, dev, { ...gridFor(n), stream: deviceStream(dev) }, args);

/** f32 ↔ f16/bf16 on the device, rounding to nearest even; a new tensor. */
export function castOn(x: CudaTensor, dtype: "f32" | "f16" | "bf16"): CudaTensor {
  const dev = check("cast", { x }, {});
  const pair = `${x.dtype}_${dtype}`;
  if (!["f32_f16", "f32_bf16", "f16_f32", "bf16_f32"].includes(pair)) {
    throw new TypeError(
      `plait: cast on ${x.device}: ${x.dtype} → ${dtype} is not supported; f32 ↔ f16 and f32 ↔ bf16 are`,
    );
  }
  const out = new CudaTensor(x.shape, dtype, dev);
  if (x.size > 0) run(`cast_${pair}`, dev, x.size, [x.ptr, out.ptr, x.size]);
  return out;
}

/**
 * dst = src · inv for one gradient (f32, f16 or bf16 src; f32 dst, which may be src), setting
 * the i32 flag `foundInf` (one element, zeroed by the caller per step) when a value is inf/NaN.
 */
export function unscaleOn(src: CudaTensor, dst: CudaTensor, inv: number, foundInf: CudaTensor): void {
  const dev = check("unscale", { src, dst, foundInf }, { dst: "f32", foundInf: "i32" });
  sameSize("unscale", ["src", src], ["dst", dst]);
  if (!["f32", "f16", "bf16"].includes(src.dtype))
    throw new TypeError(`plait: unscale: argument src has dtype ${src.dtype}, expected f32, f16 or bf16`);
  if (src.size > 0) run(`unscale_${src.dtype}`, dev, src.size, [src.ptr, dst.ptr, src.size, inv, foundInf.ptr]);
}

/** A new zeroed i32 flag for unscaleOn, and a reader that waits for the stream and tells whether all were finite. */
export function finiteFlag(device: number): { flag: CudaTensor; allFinite(): boolean } {
  const flag = new CudaTensor([1], "i32", device);
  const stream = deviceStream(device);
  memsetAsync(flag.ptr, 0, 4, stream);
  return {
    flag,
    allFinite() {
      const out = new Int32Array(1);
      memcpyDtoH(out, flag.ptr, stream);
      streamSynchronize(stream);
      return out[0] === 0;
    },
  };
}

export interface SgdOnOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /** Whether the momentum buffer already holds a value (false on the first step: it becomes g'). */
  started?: boolean;
}

/** One fused SGD step on f32 p, g (and buf when momentum ≠ 0), torch.optim.SGD's rule. */
export function sgdOn(p: CudaTensor, g: CudaTensor, buf: CudaTensor | undefined, o: SgdOnOptions): void {
  const dev = check("sgd", { p, g, buf }, { p: "f32", g: "f32", buf: "f32" });
  sameSize("sgd", ["p", p], ["g", g], ["buf", buf]);
  const momentum = o.momentum ?? 0;
  if (momentum !== 0 && buf === undefined) throw new Error("plait: sgd: momentum needs a buf tensor");
  const mode = momentum === 0 ? 0 : o.started ? 2 : 1;
  const args = [p.ptr, g.ptr, buf?.ptr ?? 0n, p.size, o.lr, o.weightDecay ?? 0, momentum, 1 - (o.dampening ?? 0)];
  if (p.size > 0) run("sgd_f32", dev, p.size, [...args, mode, o.nesterov ? 1 : 0]);
}

export interface AdamOnOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** AdamW's decoupled decay (true) or Adam's L2 term (false). */
  decoupled: boolean;
  /** The step number t, from 1. */
  step: number;
}

/** One fused Adam/AdamW step on f32 p, g, m, v (torch's rule, as the CPU kernel computes it). */
export function adamOn(p: CudaTensor, g: CudaTensor, m: CudaTensor, v: CudaTensor, o: AdamOnOptions): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, step } = o;
  const wd = o.weightDecay ?? (o.decoupled ? 0.01 : 0);
  const l2 = o.decoupled ? 0 : wd;
  const decay = o.decoupled && wd !== 0 ? 1 - lr * wd : 1;
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  adamStepOn(p, g, m, v, [stepSize, bc2Sqrt, eps, 1 - beta1, beta2, 1 - beta2, l2, decay]);
}

/**
 * The step's scalars as src/optim/adam.ts computes them for the CPU kernel (in float64, in this
 * order): step_size, sqrt(1 − β2^t), eps, 1 − β1, β2, 1 − β2, l2, decay (see adamw.cu).
 */
export type AdamScalars = readonly [number, number, number, number, number, number, number, number];

/** adamOn with the scalars given: the optimizer passes the ones it computed for every leaf. */
export function adamStepOn(p: CudaTensor, g: CudaTensor, m: CudaTensor, v: CudaTensor, scalars: AdamScalars): void {
  const dev = check("adam", { p, g, m, v }, { p: "f32", g: "f32", m: "f32", v: "f32" });
  sameSize("adam", ["p", p], ["g", g], ["m", m], ["v", v]);
  if (scalars.length !== 8) throw new RangeError(`plait: adam: expected 8 scalars, got ${scalars.length}`);
  if (p.size > 0) run("adam_f32", dev, p.size, [p.ptr, g.ptr, m.ptr, v.ptr, p.size, ...scalars]);
}

function binary(kernel: string, op: string, a: CudaTensor, b: CudaTensor): CudaTensor {
  const dev = check(op, { a, b }, { a: "f32", b: "f32" });
  sameSize(op, ["a", a], ["b", b]);
  const out = new CudaTensor(a.shape, "f32", dev);
  if (a.size > 0) run(kernel, dev, a.size, [a.ptr, b.ptr, out.ptr, a.size]);
  return out;
}

/** Elementwise a + b, a · b (f32, same size), relu(x), and relu's backward dx = g·[x > 0]. */
export const addOn = (a: CudaTensor, b: CudaTensor): CudaTensor => binary("add_f32", "add", a, b);
export const mulOn = (a: CudaTensor, b: CudaTensor): CudaTensor => binary("mul_f32", "mul", a, b);
export const reluBackwardOn = (x: CudaTensor, g: CudaTensor): CudaTensor =>
  binary("relu_backward_f32", "reluBackward", x, g);
export function reluOn(x: CudaTensor): CudaTensor {
  const dev = check("relu", { x }, { x: "f32" });
  const out = new CudaTensor(x.shape, "f32", dev);
  if (x.size > 0) run("relu_f32", dev, x.size, [x.ptr, out.ptr, x.size]);
  return out;
}

/**
 * Softmax cross-entropy over the rows of f32 logits [rows, cols] with i32 labels [rows]: the
 * per-row losses [rows], and dlogits = (softmax − onehot)·gradScale (gradScale 1/rows: the
 * gradient of the mean loss).
 */
export function softmaxXentOn(
  logits: CudaTensor,
  labels: CudaTensor,
  gradScale: number = 1 / Math.max(1, logits.shape[0]),
): { loss: CudaTensor; dlogits: CudaTensor } {
  const dev = check("softmaxCrossEntropy", { logits, labels }, { logits: "f32", labels: "i32" });
  if (logits.ndim !== 2 || labels.ndim !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new RangeError(
      `plait: softmaxCrossEntropy: logits must be [rows, cols] and labels [rows], got ${shapeStr(logits.shape)} and ${shapeStr(labels.shape)}`,
    );
  }
  const [rows, cols] = logits.shape;
  const loss = new CudaTensor([rows], "f32", dev);
  const dlogits = new CudaTensor([rows, cols], "f32", dev);
  if (rows > 0 && cols > 0) {
    const threads = Math.min(1024, 2 ** Math.ceil(Math.log2(Math.max(32, cols))));
    const dims = {
      grid: [rows] as const,
      block: [threads] as const,
      sharedBytes: threads * 4,
      stream: deviceStream(dev),
    };
    launchKernel("softmax_xent_f32", dev, dims, [logits.ptr, labels.ptr, loss.ptr, dlogits.ptr, cols, gradScale]);
  }
  return { loss, dlogits };
}

/**
 * Σ x (or Σ x² with `square`, for a gradient norm) of an f32 tensor, as a number: two launches
 * with no atomics (at most 1024 block partials, then one block), so the same tensor gives the
 * same bits every time. Waits for the device's stream to read the result.
 */
export function sumOn(x: CudaTensor, opts: { square?: boolean } = {}): number {
  const dev = check("sum", { x }, { x: "f32" });
  if (x.size === 0) return 0;
  const blocks = Math.min(1024, Math.ceil(x.size / 256));
  const partials = new CudaTensor([blocks], "f32", dev);
  const total = new CudaTensor([1], "f32", dev);
  try {
    const stream = deviceStream(dev);
    launchKernel("sum_partial_f32", dev, { grid: [blocks], block: [256], stream }, [
      x.ptr,
      x.size,
      opts.square ? 1 : 0,
      partials.ptr,
    ]);
    launchKernel("sum_final_f32", dev, { grid: [1], block: [256], stream }, [partials.ptr, blocks, total.ptr]);
    const out = new Float32Array(1);
    memcpyDtoH(out, total.ptr, stream);
    streamSynchronize(stream);
    return out[0];
  } finally {
    partials.dispose();
    total.dispose();
  }
}

/**
 * Σ x · factor of an f32 tensor into the one-element f32 tensor `out`, on the device (the
 * deterministic two passes of sumOn, then a scale): a loss or a mean that stays on the device.
 */
export function sumToOn(x: CudaTensor, out: CudaTensor, factor = 1): void {
  const dev = check("sum", { x, out }, { x: "f32", out: "f32" });
  if (out.size !== 1)
    throw new RangeError(`plait: sum: argument out must have one element, got ${shapeStr(out.shape)}`);
  const stream = deviceStream(dev);
  if (x.size === 0) {
    memsetAsync(out.ptr, 0, 4, stream);
    return;
  }
  const blocks = Math.min(1024, Math.ceil(x.size / 256));
  const partials = new CudaTensor([blocks], "f32", dev);
  try {
    launchKernel("sum_partial_f32", dev, { grid: [blocks], block: [256], stream }, [x.ptr, x.size, 0, partials.ptr]);
    launchKernel("sum_final_f32", dev, { grid: [1], block: [256], stream }, [partials.ptr, blocks, out.ptr]);
    if (factor !== 1) run("scale_f32", dev, 1, [out.ptr, factor, out.ptr, 1]);
  } finally {
    partials.dispose(); // cudaFree waits for the stream's work
  }
}

/** out = s · x (f32, same size; out may be x). */
export function scaleOn(x: CudaTensor, s: number, out: CudaTensor): void {
  const dev = check("scale", { x, out }, { x: "f32", out: "f32" });
  sameSize("scale", ["x", x], ["out", out]);
  if (x.size > 0) run("scale_f32", dev, x.size, [x.ptr, s, out.ptr, x.size]);
}

/** y += s · x (f32, same size). */
export function axpyOn(s: number, x: CudaTensor, y: CudaTensor): void {
  const dev = check("axpy", { x, y }, { x: "f32", y: "f32" });
  sameSize("axpy", ["x", x], ["y", y]);
  if (x.size > 0) run("axpy_f32", dev, x.size, [s, x.ptr, y.ptr, x.size]);
}

/**
 * out (+)= x · (s[0] · factor), or out (+)= s[0] · factor without x: `s` a one-element f32
 * tensor read on the device (an output gradient), so nothing waits for the host.
 */
export function scaleByOn(
  x: CudaTensor | undefined,
  s: CudaTensor,
  factor: number,
  out: CudaTensor,
  accumulate: boolean,
): void {
  const dev = check("scaleBy", { x, s, out }, { x: "f32", s: "f32", out: "f32" });
  if (s.size !== 1) throw new RangeError(`plait: scaleBy: argument s must have one element, got ${shapeStr(s.shape)}`);
  if (x) sameSize("scaleBy", ["x", x], ["out", out]);
  if (out.size > 0)
    run("scale_by_f32", dev, out.size, [x?.ptr ?? 0n, s.ptr, factor, out.ptr, out.size, accumulate ? 1 : 0]);
}

/** out[c] (+)= Σ_r g[r, c] for f32 g [rows, cols] and out [cols] (a bias's gradient). */
export function colSumOn(g: CudaTensor, out: CudaTensor, accumulate: boolean): void {
  const dev = check("colSum", { g, out }, { g: "f32", out: "f32" });
  const cols = g.shape.at(-1) ?? 1;
  const rows = cols === 0 ? 0 : g.size / cols;
  if (out.size !== cols)
    throw new RangeError(`plait: colSum: argument out has ${out.size} elements, expected ${cols} (g's last axis)`);
  if (cols > 0) run("col_sum_f32", dev, cols, [g.ptr, out.ptr, rows, cols, accumulate ? 1 : 0]);
}
