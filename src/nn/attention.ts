// Causal multi-head self-attention and the pre-norm transformer block (src/nn), written with
// the differentiable ops only, so their gradients come from the ops' own backward passes.
import type { DType } from "../core/dtype.ts";
import { shapeStr, Tensor, tensor } from "../core/tensor.ts";
import { gelu } from "../ops/activation.ts";
import { add, scale } from "../ops/arith.ts";
import { bmm } from "../ops/bmm.ts";
import { cast } from "../ops/cast.ts";
import { dropout as dropoutOp, type UniformSource } from "../ops/dropout.ts";
import { layerNorm } from "../ops/layerNorm.ts";
import { linear } from "../ops/linear.ts";
import { permute } from "../ops/permute.ts";
import { reshape } from "../ops/shape.ts";
import { slice } from "../ops/slice.ts";
import { softmax } from "../ops/softmax.ts";
import { maskedFill } from "../ops/where.ts";
import type { RandomSource } from "./init.ts";

/** A dense layer's params: x · w + b with w [in, out], b [out]. */
export type Dense = { w: Tensor; b: Tensor };
/** A layer norm's gain and shift, each [dModel]. */
export type Norm = { gamma: Tensor; beta: Tensor };
/** Attention params: the fused query/key/value projection [d, 3d] and the output one [d, d]. */
export type AttentionParams = { qkv: Dense; proj: Dense };
/** One block: norm → attention → residual, norm → MLP (d → 4d → d, GELU) → residual. */
export type BlockParams = { ln1: Norm; attn: AttentionParams; ln2: Norm; mlp: { fc: Dense; proj: Dense } };

export interface AttentionOptions {
  /** Number of heads; dModel must be a multiple of it. */
  heads: number;
  /** Training mode: dropout is applied (needs rng). Default false. */
  train?: boolean;
  /** Randomness for dropout in training mode. */
  rng?: UniformSource;
  /** Dropout probability on the attention weights and on the output projection. Default 0. */
  dropout?: number;
}

export interface BlockInitOptions {
  /** Element type of the params (default f32). */
  dtype?: DType;
  /**
   * Blocks in the model: the projections that write into the residual stream get std
   * 0.02/√(2·layers) (GPT-2's scaling), so the stream's variance does not grow with depth. Default 1.
   */
  layers?: number;
}

/**
 * Fresh attention params for width `dModel`: weights N(0, 0.02²) (the output projection scaled
 * down by √(2·layers)), zero biases.
 */
export function initAttention(rng: RandomSource, dModel: number, opts: BlockInitOptions = {}): AttentionParams {
  const d = positiveInt("initAttention", "argument dModel", dModel);
  const dtype = opts.dtype ?? "f32";
  const layers = positiveInt("initAttention", "option layers", opts.layers ?? 1);
  return {
    qkv: dense(rng, d, 3 * d, 0.02, dtype),
    proj: dense(rng, d, d, 0.02 / Math.sqrt(2 * layers), dtype),
  };
}

/** Fresh params of one pre-norm transformer block of width `dModel` (MLP hidden width 4·dModel). */
export function initTransformerBlock(rng: RandomSource, dModel: number, opts: BlockInitOptions = {}): BlockParams {
  const d = positiveInt("initTransformerBlock", "argument dModel", dModel);
  const dtype = opts.dtype ?? "f32";
  const layers = positiveInt("initTransformerBlock", "option layers", opts.layers ?? 1);
  return {
    ln1: norm(d, dtype),
    attn: initAttention(rng, d, { dtype, layers }),
    ln2: norm(d, dtype),
    mlp: { fc: dense(rng, d, 4 * d, 0.02, dtype), proj: dense(rng, 4 * d, d, 0.02 / Math.sqrt(2 * layers), dtype) },
  };
}

/**
 * Causal multi-head self-attention on x [batch, t, d]: each position attends to itself and the
 * positions before it. Per head h (head width d/heads):
 *   q, k, v = split(x · Wqkv + bqkv),  A = softmax(mask(q·kᵀ / √(d/heads))),  y_h = A · v,
 * then the heads are concatenated and projected (· Wproj + bproj). The mask sets the scores of
 * later positions to −∞ (maskedFill), so their weights are exactly 0.
 *
 * Precision: with half weights (a mixed-precision compute copy) the projections run in half
 * with f32 accumulation and give f32, so the scores reach softmax as f32 and it runs in f32 (as
 * torch's autocast keeps softmax in f32); scores beyond f16's range stay finite. f64 weights
 * and input run in f64 throughout.
 */
export function causalSelfAttention(params: AttentionParams, x: Tensor, opts: AttentionOptions): Tensor {
  const op = "causalSelfAttention";
  if (!(x instanceof Tensor) || x.ndim !== 3) {
    const got = x instanceof Tensor ? `shape ${shapeStr(x.shape)}` : String(x);
    throw new RangeError(`plait: ${op}: argument x must be [batch, t, dModel], got ${got}`);
  }
  const [b, t, d] = x.shape;
  const heads = checkHeads(op, opts?.heads, d);
  const p = checkDropout(op, opts.dropout ?? 0, opts);
  checkDense(op, "params.qkv", params?.qkv, d, 3 * d);
  checkDense(op, "params.proj", params.proj, d, d);
  const hd = d / heads;
  const qkv = linear(reshape(x, [b * t, d]), params.qkv.w, params.qkv.b); // [b·t, 3d]
  // [b, t, 3, heads, hd] → [3, b, heads, t, hd]: q, k and v each [b, heads, t, hd]
  const split = permute(reshape(qkv, [b, t, 3, heads, hd]), [2, 0, 3, 1, 4]);
  const part = (i: number) => reshape(slice(split, [i], [i + 1]), [b, heads, t, hd]);
  const [q, k, v] = [part(0), part(1), part(2)];
  const scores = scale(bmm(q, k, { transB: true }), 1 / Math.sqrt(hd)); // [b, heads, t, t]
  let att = softmax(maskedFill(scores, causalMask(t), Number.NEGATIVE_INFINITY));
  if (p > 0 && opts.train) att = dropoutOp(att, p, opts.rng!);
  const y = permute(bmm(att, v), [0, 2, 1, 3]); // [b, t, heads, hd]
  let out = linear(reshape(y, [b * t, d]), params.proj.w, params.proj.b);
  if (p > 0 && opts.train) out = dropoutOp(out, p, opts.rng!);
  return reshape(out, [b, t, d]);
}

/**
 * One pre-norm transformer block on x [batch, t, d] (GPT-2's layout):
 *   x = x + attention(layerNorm₁(x)),  x = x + dropout(W₂ · gelu(W₁ · layerNorm₂(x))).
 * Norm gains are cast to x's dtype when they differ (under "16-true" the whole parameter set
 * is half; the norms still run in f32).
 */
export function transformerBlock(params: BlockParams, x: Tensor, opts: AttentionOptions): Tensor {
  const op = "transformerBlock";
  if (!(x instanceof Tensor) || x.ndim !== 3) {
    const got = x instanceof Tensor ? `shape ${shapeStr(x.shape)}` : String(x);
    throw new RangeError(`plait: ${op}: argument x must be [batch, t, dModel], got ${got}`);
  }
  const [b, t, d] = x.shape;
  checkHeads(op, opts?.heads, d);
  const p = checkDropout(op, opts.dropout ?? 0, opts);
  for (const name of ["ln1", "ln2"] as const) checkNorm(op, `params.${name}`, params?.[name], d);
  checkDense(op, "params.mlp.fc", params.mlp?.fc, d, 4 * d);
  checkDense(op, "params.mlp.proj", params.mlp.proj, 4 * d, d);
  const h = add(x, causalSelfAttention(params.attn, normed(x, params.ln1), opts));
  const rows = reshape(normed(h, params.ln2), [b * t, d]);
  let m = linear(gelu(linear(rows, params.mlp.fc.w, params.mlp.fc.b)), params.mlp.proj.w, params.mlp.proj.b);
  if (p > 0 && opts.train) m = dropoutOp(m, p, opts.rng!);
  return add(h, reshape(m, [b, t, d]));
}

/** layerNorm with its gain and shift in x's dtype (f32 or f64). */
export function normed(x: Tensor, n: Norm): Tensor {
  const like = (v: Tensor) => (v.dtype === x.dtype ? v : cast(v, x.dtype));
  return layerNorm(x, like(n.gamma), like(n.beta));
}

/** [t, t] u8, 1 above the diagonal: the positions a query may not see. */
function causalMask(t: number): Tensor {
  const m = new Uint8Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = 1;
  return tensor(m, [t, t], { dtype: "u8" });
}

function dense(rng: RandomSource, i: number, o: number, std: number, dtype: DType): Dense {
  const w = new Float64Array(i * o);
  for (let k = 0; k < w.length; k++) w[k] = rng.normal() * std;
  return { w: tensor(w, [i, o], { dtype }), b: tensor(new Float64Array(o), [o], { dtype }) };
}

function norm(d: number, dtype: DType): Norm {
  return {
    gamma: tensor(new Float64Array(d).fill(1), [d], { dtype }),
    beta: tensor(new Float64Array(d), [d], { dtype }),
  };
}

function positiveInt(op: string, what: string, v: unknown): number {
  if (!(Number.isInteger(v) && (v as number) > 0)) {
    throw new RangeError(`plait: ${op}: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

/** `heads` checked against the model width d. */
export function checkHeads(op: string, heads: unknown, d: number): number {
  const h = positiveInt(op, "option heads", heads);
  if (d % h !== 0) {
    throw new RangeError(`plait: ${op}: dModel ${d} is not divisible by heads ${h} (each head takes dModel/heads)`);
  }
  return h;
}

function checkDropout(op: string, p: unknown, opts: AttentionOptions): number {
  if (!(typeof p === "number" && p >= 0 && p < 1)) {
    throw new RangeError(`plait: ${op}: option dropout must be a probability in [0, 1), got ${JSON.stringify(p)}`);
  }
  if (p > 0 && opts.train && typeof opts.rng?.uniform !== "function") {
    throw new TypeError(`plait: ${op}: dropout ${p} in training mode needs opts.rng (e.g. new Rng(seed))`);
  }
  return p;
}

function checkDense(op: string, path: string, v: unknown, i: number, o: number): void {
  const p = v as Partial<Dense> | undefined;
  const ok = (t: unknown, shape: number[]) => t instanceof Tensor && shapeStr(t.shape) === shapeStr(shape);
  if (!(p && ok(p.w, [i, o]) && ok(p.b, [o]))) {
    throw new TypeError(
      `plait: ${op}: ${path} must be { w [${i}, ${o}], b [${o}] }, got ${describe(p?.w)} and ${describe(p?.b)}`,
    );
  }
}

function checkNorm(op: string, path: string, v: unknown, d: number): void {
  const n = v as Partial<Norm> | undefined;
  const ok = (t: unknown) => t instanceof Tensor && shapeStr(t.shape) === `[${d}]`;
  if (!(n && ok(n.gamma) && ok(n.beta))) {
    throw new TypeError(
      `plait: ${op}: ${path} must be { gamma [${d}], beta [${d}] }, got ${describe(n?.gamma)} and ${describe(n?.beta)}`,
    );
  }
}

const describe = (v: unknown): string => (v instanceof Tensor ? v.describe() : String(v));
