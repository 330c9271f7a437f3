// Layers for `sequential` (src/nn/sequential.ts): each is a value with `apply` and, when it has
// any, `init` (params) and `buffers` (state the forward pass updates, not the optimizer).
// Exported as the `layers` namespace, since the ops own the short names (conv2d, relu, ...).
import type { DType } from "../core/dtype.ts";
import { shapeStr, type Tensor, tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { gelu as geluOp, relu as reluOp, tanh as tanhOp } from "../ops/activation.ts";
import { batchNorm as batchNormOp } from "../ops/batchNorm.ts";
import { conv2d as conv2dOp } from "../ops/conv.ts";
import { dropout as dropoutOp, type UniformSource } from "../ops/dropout.ts";
import type { Pair } from "../ops/im2col.ts";
import { matmul } from "../ops/linear.ts";
import { avgPool2d as avgPoolOp, maxPool2d as maxPoolOp } from "../ops/pool.ts";
import { reshape as reshapeOp } from "../ops/shape.ts";
import type { RandomSource } from "./init.ts";

/** What a model's `apply` passes to each layer. */
export interface ApplyOptions {
  /** Training mode: dropout drops, batchNorm uses (and updates) batch statistics. Default false. */
  train?: boolean;
  /** Randomness for dropout in training mode. */
  rng?: UniformSource;
  /** The model's buffers (from `model.buffers()`, or `state.transforms.buffers` under train). */
  buffers?: Tree;
}

/** One layer of a `sequential` model. */
export interface Layer {
  /** A short description for `summary` and error messages, e.g. "conv2d(1→16, 3×3)". */
  readonly name: string;
  /** Fresh params of this layer (absent for a layer without params). */
  init?(rng: RandomSource, dtype: DType): Record<string, Tensor>;
  /** Fresh buffers of this layer (absent for a layer without buffers). */
  buffers?(dtype: "f32" | "f64"): Record<string, Tensor>;
  /** The layer's forward pass; `params`/`buffers` are this layer's own (checked by `sequential`). */
  apply(x: Tensor, params: Record<string, Tensor>, opts: ApplyOptions & { buffers?: Record<string, Tensor> }): Tensor;
  /** The shape of each param leaf, for sequential's checks (same keys as init's). */
  readonly paramShapes?: Readonly<Record<string, readonly number[]>>;
  /** The shape of each buffer leaf (same keys as buffers'). */
  readonly bufferShapes?: Readonly<Record<string, readonly number[]>>;
}

const positive = (op: string, name: string, v: unknown): number => {
  if (!(Number.isInteger(v) && (v as number) > 0)) {
    throw new RangeError(`plait: layers.${op}: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
};

function normalTensor(rng: RandomSource, shape: number[], std: number, dtype: DType): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
  return tensor(v, shape, { dtype });
}

const filled = (shape: number[], value: number, dtype: DType) =>
  tensor(new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, { dtype });

export interface Conv2dLayerOptions {
  /** Input channels. */
  in: number;
  /** Output channels. */
  out: number;
  /** Kernel size: a number or [height, width]. */
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /** Add a learned bias per output channel. Default true. */
  bias?: boolean;
}

/** A 2-D convolution (ops' conv2d): params w [out, in, kh, kw] (He-normal, fan-in in·kh·kw) and b [out] (zeros). */
export function conv2d(opts: Conv2dLayerOptions): Layer {
  const cin = positive("conv2d", "option in", opts?.in);
  const cout = positive("conv2d", "option out", opts.out);
  const [kh, kw] = typeof opts.kernel === "number" ? [opts.kernel, opts.kernel] : (opts.kernel ?? []);
  positive("conv2d", "option kernel", kh);
  positive("conv2d", "option kernel", kw);
  const bias = opts.bias ?? true;
  const conv = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation };
  const paramShapes: Record<string, number[]> = { w: [cout, cin, kh, kw] };
  if (bias) paramShapes.b = [cout];
  return {
    name: `conv2d(${cin}→${cout}, ${kh}×${kw})`,
    paramShapes,
    init(rng, dtype) {
      const w = normalTensor(rng, [cout, cin, kh, kw], Math.SQRT2 / Math.sqrt(cin * kh * kw), dtype);
      const p: Record<string, Tensor> = { w };
      if (bias) p.b = filled([cout], 0, dtype);
      return p;
    },
    apply: (x, p) => conv2dOp(x, p.w, p.b, conv),
  };
}

/** A dense layer x · w + b: params w [in, out] (He-normal) and b [out] (zeros), as mlp's. */
export function linear(inFeatures: number, outFeatures: number, opts: { bias?: boolean } = {}): Layer {
  const i = positive("linear", "argument inFeatures", inFeatures);
  const o = positive("linear", "argument outFeatures", outFeatures);
  const bias = opts.bias ?? true;
  const paramShapes: Record<string, number[]> = { w: [i, o] };
  if (bias) paramShapes.b = [o];
  return {
    name: `linear(${i}→${o})`,
    paramShapes,
    init(rng, dtype) {
      const p: Record<string, Tensor> = { w: normalTensor(rng, [i, o], Math.SQRT2 / Math.sqrt(i), dtype) };
      if (bias) p.b = filled([o], 0, dtype);
      return p;
    },
    apply(x, p) {
      if (x.ndim !== 2 || x.shape[1] !== i) {
        throw new RangeError(`plait: layers.linear(${i}→${o}): input must be [batch, ${i}], got ${shapeStr(x.shape)}`);
      }
      return matmul(x, p.w, { bias: p.b });
    },
  };
}

/** Batch normalisation over axis 1 (ops' batchNorm): params gamma (ones) and beta (zeros) [channels]; buffers mean (zeros) and var (ones). */
export function batchNorm(channels: number, opts: { momentum?: number; eps?: number } = {}): Layer {
  const c = positive("batchNorm", "argument channels", channels);
  const { momentum, eps } = opts;
  return {
    name: `batchNorm(${c})`,
    paramShapes: { gamma: [c], beta: [c] },
    bufferShapes: { mean: [c], var: [c] },
    init: (_rng, dtype) => ({ gamma: filled([c], 1, dtype), beta: filled([c], 0, dtype) }),
    buffers: (dtype) => ({ mean: filled([c], 0, dtype), var: filled([c], 1, dtype) }),
    apply(x, p, o) {
      const train = o.train ?? false;
      const b = o.buffers;
      return batchNormOp(x, p.gamma, p.beta, {
        train,
        ...(b ? { runningMean: b.mean, runningVar: b.var } : {}),
        ...(momentum !== undefined ? { momentum } : {}),
        ...(eps !== undefined ? { eps } : {}),
      });
    },
  };
}

/** Max pooling (ops' maxPool2d). */
export function maxPool2d(opts: { kernel: Pair; stride?: Pair; padding?: Pair }): Layer {
  return { name: `maxPool2d(${JSON.stringify(opts?.kernel)})`, apply: (x) => maxPoolOp(x, opts) };
}

/** Average pooling (ops' avgPool2d). */
export function avgPool2d(opts: { kernel: Pair; stride?: Pair; padding?: Pair; countIncludePad?: boolean }): Layer {
  return { name: `avgPool2d(${JSON.stringify(opts?.kernel)})`, apply: (x) => avgPoolOp(x, opts) };
}

export const relu = (): Layer => ({ name: "relu", apply: (x) => reluOp(x) });
export const gelu = (): Layer => ({ name: "gelu", apply: (x) => geluOp(x) });
export const tanh = (): Layer => ({ name: "tanh", apply: (x) => tanhOp(x) });

/** [N, ...] → [N, product of the rest]. */
export const flatten = (): Layer => ({ name: "flatten", apply: (x) => reshapeOp(x, [x.shape[0], -1]) });

/** [N, ...] → [N, ...shape] (e.g. MNIST's [N, 784] rows to images [N, 1, 28, 28]). */
export function reshape(shape: readonly number[]): Layer {
  return { name: `reshape([${shape.join(", ")}])`, apply: (x) => reshapeOp(x, [x.shape[0], ...shape]) };
}

/** Dropout with probability p in training mode (needs `rng` in apply's options); the identity otherwise. */
export function dropout(p: number): Layer {
  if (!(typeof p === "number" && p >= 0 && p < 1)) {
    throw new RangeError(`plait: layers.dropout: argument p must be a probability in [0, 1), got ${p}`);
  }
  return {
    name: `dropout(${p})`,
    apply(x, _p, o) {
      if (!o.train || p === 0) return x;
      if (!o.rng) throw new TypeError("plait: layers.dropout: training mode needs opts.rng (e.g. new Rng(seed))");
      return dropoutOp(x, p, o.rng);
    },
  };
}
