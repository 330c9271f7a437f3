import type { DType } from "../core/dtype.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { isPlainObject, type Tree } from "../core/tree.ts";
import type { RandomSource } from "./init.ts";
import type { ApplyOptions, Layer } from "./layers.ts";
import * as layers from "./layers.ts";
import { describe } from "./mlp.ts";

/** Params (and buffers) of a sequential model: one entry per layer that has any, keyed by the layer's index (torch's "0.weight"). */
export type SequentialParams = { [index: string]: Record<string, Tensor> };

export interface Sequential {
  readonly layers: readonly Layer[];
  /** Fresh params: each layer's init, under its index. */
  init(rng: RandomSource): SequentialParams;
  /**
   * Fresh buffers (batchNorm's running statistics) under each layer's index; `{}` when no
   * layer has any. Under `train`, `valueAndGradWithBuffers` keeps them in the train state.
   */
  buffers(dtype?: "f32" | "f64"): SequentialParams;
  /** Whether any layer has buffers (then evaluation needs them: `apply(params, x, { buffers })`). */
  readonly hasBuffers: boolean;
  /**
   * The layers in order on x. Each layer's params are checked (keys and shapes, named by path)
   * before it runs; `opts.train` switches dropout and batchNorm to training mode, and batchNorm
   * reads (evaluation) or updates in place (training) `opts.buffers`.
   */
  apply(params: Tree, x: Tensor, opts?: ApplyOptions): Tensor;
}

export interface SequentialOptions {
  /** Element type of the params (default f32). */
  dtype?: DType;
}

/** Layers applied one after another (torch.nn.Sequential). */
export function sequential(list: readonly Layer[], opts: SequentialOptions = {}): Sequential {
  if (!Array.isArray(list) || list.length === 0 || !list.every((l) => typeof l?.apply === "function")) {
    throw new TypeError(
      "plait: sequential: argument layers must be a non-empty array of layers (from plait's layers.*)",
    );
  }
  const dtype = opts.dtype ?? "f32";
  const withParams = list.flatMap((l, i) => (l.init ? [i] : []));
  const withBuffers = list.flatMap((l, i) => (l.buffers ? [i] : []));
  const model = `sequential(${list.length} layers)`;
  return {
    layers: list,
    hasBuffers: withBuffers.length > 0,
    init(rng) {
      const out: SequentialParams = {};
      for (const i of withParams) out[i] = list[i].init!(rng, dtype);
      return out;
    },
    buffers(d = "f32") {
      const out: SequentialParams = {};
      for (const i of withBuffers) out[i] = list[i].buffers!(d);
      return out;
    },
    apply(params, x, o = {}) {
      if (!(x instanceof Tensor))
        throw new TypeError(`plait: ${model}.apply: argument x must be a Tensor, got ${typeof x}`);
      const p = checkGroup("params", params, list, withParams, (l) => l.paramShapes ?? {}, model);
      const b =
        o.buffers === undefined
          ? undefined
          : checkGroup("buffers", o.buffers, list, withBuffers, (l) => l.bufferShapes ?? {}, model);
      let h = x;
      for (let i = 0; i < list.length; i++) {
        h = list[i].apply(h, p[i] ?? {}, { ...o, buffers: b?.[i] });
      }
      return h;
    },
  };
}

/** `tree` as { [index]: { leaf: Tensor } } for the layers `indices`, each leaf of its expected shape. */
function checkGroup(
  what: string,
  tree: unknown,
  list: readonly Layer[],
  indices: readonly number[],
  shapes: (l: Layer) => Readonly<Record<string, readonly number[]>>,
  model: string,
): SequentialParams {
  if (!isPlainObject(tree))
    throw new TypeError(`plait: ${model}.apply: ${what} must be an object as init() returns, got ${describe(tree)}`);
  const want = new Set(indices.map(String));
  for (const key of Object.keys(tree)) {
    if (!want.has(key)) {
      throw new TypeError(
        `plait: ${model}.apply: ${what}.${key} is not a layer with ${what} (those are ${[...want].join(", ") || "none"})`,
      );
    }
  }
  for (const i of indices) {
    const group = tree[i];
    const expected = shapes(list[i]);
    if (!isPlainObject(group)) {
      throw new TypeError(
        `plait: ${model}.apply: ${what}.${i} (${list[i].name}) is ${describe(group)}, expected { ${Object.keys(expected).join(", ")} }`,
      );
    }
    for (const key of Object.keys(group)) {
      if (!(key in expected))
        throw new TypeError(
          `plait: ${model}.apply: ${what}.${i}.${key} is not a ${what === "params" ? "param" : "buffer"} of ${list[i].name}`,
        );
    }
    for (const [key, shape] of Object.entries(expected)) {
      const leaf = group[key];
      if (!(leaf instanceof Tensor) || shapeStr(leaf.shape) !== shapeStr(shape)) {
        throw new TypeError(
          `plait: ${model}.apply: ${what}.${i}.${key} is ${describe(leaf)}, expected a float tensor ${shapeStr(shape)} for ${list[i].name}`,
        );
      }
    }
  }
  return tree as SequentialParams;
}

export interface CnnOptions {
  /** Input images as [channels, height, width]; rows of [batch, c·h·w] are reshaped to it. Default [1, 28, 28] (MNIST). */
  input?: readonly [number, number, number];
  /** Output channels of the two convolutions. Default [16, 32]. */
  channels?: readonly [number, number];
  /** Kernel size of both convolutions (padded to keep the size). Default 3. */
  kernel?: number;
  /** Classes (the logits' width). Default 10. */
  classes?: number;
  /** A batchNorm after each convolution. Default false. */
  batchNorm?: boolean;
  dtype?: DType;
}

/**
 * The demo's CNN: conv-relu-maxpool ×2, then a linear layer to the logits. Input rows
 * [batch, c·h·w] (or images [batch, c, h, w]); output logits [batch, classes].
 */
export function cnn(opts: CnnOptions = {}): Sequential {
  const [c, h, w] = opts.input ?? [1, 28, 28];
  const [c1, c2] = opts.channels ?? [16, 32];
  const k = opts.kernel ?? 3;
  const classes = opts.classes ?? 10;
  if (!(Number.isInteger(k) && k % 2 === 1 && k > 0))
    throw new RangeError(`plait: cnn: option kernel must be an odd positive integer, got ${k}`);
  const bn = (ch: number) => (opts.batchNorm ? [layers.batchNorm(ch)] : []);
  const pad = (k - 1) / 2;
  const hh = Math.floor(Math.floor(h / 2) / 2);
  const ww = Math.floor(Math.floor(w / 2) / 2);
  if (hh < 1 || ww < 1) throw new RangeError(`plait: cnn: input [${c}, ${h}, ${w}] is too small for two 2×2 poolings`);
  return sequential(
    [
      layers.reshape([c, h, w]),
      layers.conv2d({ in: c, out: c1, kernel: k, padding: pad }),
      ...bn(c1),
      layers.relu(),
      layers.maxPool2d({ kernel: 2 }),
      layers.conv2d({ in: c1, out: c2, kernel: k, padding: pad }),
      ...bn(c2),
      layers.relu(),
      layers.maxPool2d({ kernel: 2 }),
      layers.flatten(),
      layers.linear(c2 * hh * ww, classes),
    ],
    { dtype: opts.dtype },
  );
}

/**
 * A table of every leaf of `params` (or any tree): its path, shape and dtype, then the total
 * element count — Keras' model.summary() for a pytree. Returns the text; print it yourself.
 */
export function summary(params: Tree): string {
  const rows: [string, string, string, number][] = [];
  const walk = (v: unknown, path: string) => {
    if (v instanceof Tensor) rows.push([path, shapeStr(v.shape), v.dtype, v.size]);
    else if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
    else if (isPlainObject(v)) for (const k of Object.keys(v).sort(byKey)) walk(v[k], path ? `${path}.${k}` : k);
    else
      throw new TypeError(
        `plait: summary: ${path || "argument params"} is ${describe(v)}, not a tensor, array or plain object`,
      );
  };
  walk(params, "");
  const total = rows.reduce((t, r) => t + r[3], 0);
  const head: [string, string, string, string] = ["path", "shape", "dtype", "params"];
  const body = rows.map(([p, s, d, n]) => [p, s, d, n.toLocaleString("en-US")]);
  const width = head.map((_, i) => Math.max(head[i].length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 3 ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join("  ")
      .trimEnd();
  return [
    line(head),
    ...body.map(line),
    `total: ${total.toLocaleString("en-US")} parameters in ${rows.length} tensors`,
  ].join("\n");
}

/** Layer indices in numeric order ("2" before "10"), other keys as strings. */
const byKey = (a: string, b: string): number =>
  /^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0;
