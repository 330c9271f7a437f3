import type { DType } from "../core/dtype.ts";
import { shapeStr, Tensor, tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { add } from "../ops/arith.ts";
import { dropout as dropoutOp } from "../ops/dropout.ts";
import { embedding } from "../ops/embedding.ts";
import { linear, matmul } from "../ops/linear.ts";
import { reshape } from "../ops/shape.ts";
import {
  type BlockParams,
  checkHeads,
  type Dense,
  initTransformerBlock,
  type Norm,
  normed,
  transformerBlock,
} from "./attention.ts";
import type { RandomSource } from "./init.ts";
import type { ApplyOptions } from "./layers.ts";

export interface GptOptions {
  /** Token ids are in [0, vocab); the logits' width. */
  vocab: number;
  /** The longest sequence the model takes (rows of the position table). */
  context: number;
  /** Width of the residual stream. */
  dModel: number;
  /** Attention heads per block; dModel must be a multiple of it. */
  heads: number;
  /** Transformer blocks. */
  layers: number;
  /** Dropout probability (embeddings, attention weights, residual branches) in training mode. Default 0. */
  dropout?: number;
  /** The output head reuses the token table (logits = h · wteᵀ, GPT-2's tying). Default true. */
  tiedHead?: boolean;
  /** Element type of the params (default f32). */
  dtype?: DType;
}

/** GPT params; `head` is present only when the head is untied. */
export type GptParams = {
  wte: Tensor;
  wpe: Tensor;
  blocks: BlockParams[];
  lnF: Norm;
  head?: Dense;
};

export interface Gpt {
  readonly options: Readonly<Required<Omit<GptOptions, "dtype">>> & { dtype: DType };
  /** Fresh params: embeddings N(0, 0.02²), blocks as initTransformerBlock, final norm (1, 0). */
  init(rng: RandomSource): GptParams;
  /**
   * Logits [batch, t, vocab] for i32 token ids [batch, t], t ≤ context: position i's logits
   * predict token i + 1 and see tokens 0..i only. `opts.train` turns dropout on (needs `rng`).
   */
  apply(params: Tree, ids: Tensor, opts?: ApplyOptions): Tensor;
}

/**
 * A decoder-only transformer (GPT-2's layout): token + position embeddings, `layers` pre-norm
 * blocks of causal self-attention and a GELU MLP, a final layer norm and a linear head to the
 * vocabulary (tied to the token table by default).
 */
export function gpt(options: GptOptions): Gpt {
  const op = "gpt";
  if (options === null || typeof options !== "object") {
    throw new TypeError(`plait: ${op}: options must be { vocab, context, dModel, heads, layers }, got ${options}`);
  }
  const known = ["vocab", "context", "dModel", "heads", "layers", "dropout", "tiedHead", "dtype"];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`plait: ${op}: unknown option ${key}; known: ${known.join(", ")}`);
  }
  const int = (name: keyof GptOptions) => {
    const v = options[name];
    if (!(Number.isInteger(v) && (v as number) > 0)) {
      throw new RangeError(`plait: ${op}: option ${name} must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const [vocab, context, dModel, layers] = [int("vocab"), int("context"), int("dModel"), int("layers")];
  const heads = checkHeads(op, options.heads, dModel);
  const p = options.dropout ?? 0;
  if (!(typeof p === "number" && p >= 0 && p < 1)) {
    throw new RangeError(`plait: ${op}: option dropout must be a probability in [0, 1), got ${JSON.stringify(p)}`);
  }
  const tiedHead = options.tiedHead ?? true;
  const dtype = options.dtype ?? "f32";
  const o = { vocab, context, dModel, heads, layers, dropout: p, tiedHead, dtype };
  const normal = (rng: RandomSource, shape: [number, number], std: number) => {
    const v = new Float64Array(shape[0] * shape[1]);
    for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
    return tensor(v, shape, { dtype });
  };
  return {
    options: o,
    init(rng) {
      const params: GptParams = {
        wte: normal(rng, [vocab, dModel], 0.02),
        wpe: normal(rng, [context, dModel], 0.02),
        blocks: Array.from({ length: layers }, () => initTransformerBlock(rng, dModel, { dtype, layers })),
        lnF: {
          gamma: tensor(new Float64Array(dModel).fill(1), [dModel], { dtype }),
          beta: tensor(new Float64Array(dModel), [dModel], { dtype }),
        },
      };
      if (!tiedHead)
        params.head = { w: normal(rng, [dModel, vocab], 0.02), b: tensor(new Float64Array(vocab), [vocab], { dtype }) };
      return params;
    },
    apply(params, ids, a = {}) {
      const g = checkParams(params, o);
      const [b, t] = checkIds(ids, vocab, context);
      const train = a.train === true;
      if (train && p > 0 && typeof a.rng?.uniform !== "function") {
        throw new TypeError(`plait: ${op}.apply: dropout ${p} in training mode needs opts.rng (e.g. new Rng(seed))`);
      }
      const positions = tensor(
        Int32Array.from({ length: t }, (_, i) => i),
        [t],
        { dtype: "i32" },
      );
      let h = add(embedding(g.wte, ids), embedding(g.wpe, positions)); // [b, t, d] + [t, d]
      if (train && p > 0) h = dropoutOp(h, p, a.rng!);
      const blockOpts = { heads, train, rng: a.rng, dropout: p };
      for (const block of g.blocks) h = transformerBlock(block, h, blockOpts);
      const rows = reshape(normed(h, g.lnF), [b * t, dModel]);
      const logits = g.head ? linear(rows, g.head.w, g.head.b) : matmul(rows, g.wte, { transB: true });
      return reshape(logits, [b, t, vocab]);
    },
  };
}

/** ids as [batch, t] i32 with t ≤ context and every id in [0, vocab); errors name the offending value. */
function checkIds(ids: unknown, vocab: number, context: number): [number, number] {
  const op = "gpt.apply";
  if (!(ids instanceof Tensor) || ids.ndim !== 2 || ids.dtype !== "i32") {
    const got = ids instanceof Tensor ? ids.describe() : String(ids);
    throw new TypeError(`plait: ${op}: argument ids must be i32 token ids [batch, t], got ${got}`);
  }
  const [b, t] = ids.shape;
  if (t > context) {
    throw new RangeError(
      `plait: ${op}: sequence length ${t} (ids ${shapeStr(ids.shape)}) is longer than the context ${context} the model was built with`,
    );
  }
  const v = ids.data() as Int32Array;
  for (let i = 0; i < v.length; i++) {
    if (v[i] < 0 || v[i] >= vocab) {
      throw new RangeError(
        `plait: ${op}: token id ${v[i]} at [${Math.floor(i / t)}, ${i % t}] is outside the vocabulary [0, ${vocab})`,
      );
    }
  }
  return [b, t];
}

/** The params tree as init makes it: keys and the shapes that matter at the top level (blocks check their own). */
function checkParams(
  params: unknown,
  o: { vocab: number; context: number; dModel: number; layers: number; tiedHead: boolean },
): GptParams {
  const op = "gpt.apply";
  const g = params as Partial<GptParams> | null;
  const leaf = (path: string, v: unknown, shape: number[]) => {
    if (!(v instanceof Tensor) || shapeStr(v.shape) !== shapeStr(shape)) {
      const got = v instanceof Tensor ? v.describe() : String(v);
      throw new TypeError(`plait: ${op}: params.${path} must be ${shapeStr(shape)}, got ${got}`);
    }
  };
  if (g === null || typeof g !== "object")
    throw new TypeError(`plait: ${op}: params must be what init() returns, got ${g}`);
  leaf("wte", g.wte, [o.vocab, o.dModel]);
  leaf("wpe", g.wpe, [o.context, o.dModel]);
  if (!Array.isArray(g.blocks) || g.blocks.length !== o.layers) {
    throw new TypeError(
      `plait: ${op}: params.blocks must hold ${o.layers} blocks, got ${Array.isArray(g.blocks) ? g.blocks.length : String(g.blocks)}`,
    );
  }
  leaf("lnF.gamma", g.lnF?.gamma, [o.dModel]);
  leaf("lnF.beta", g.lnF?.beta, [o.dModel]);
  if (o.tiedHead && g.head !== undefined) {
    throw new TypeError(`plait: ${op}: params.head is given but the model ties its head to wte (tiedHead: true)`);
  }
  if (!o.tiedHead) {
    leaf("head.w", g.head?.w, [o.dModel, o.vocab]);
    leaf("head.b", g.head?.b, [o.vocab]);
  }
  return g as GptParams;
}
