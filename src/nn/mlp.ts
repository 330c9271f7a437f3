import type { DType } from "../core/dtype.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { isPlainObject, type Tree } from "../core/tree.ts";
import { gelu, relu, sigmoid, tanh } from "../ops/activation.ts";
import { linear } from "../ops/linear.ts";
import { heNormal, type RandomSource, xavierUniform, zerosInit } from "./init.ts";

export type Activation = "relu" | "gelu" | "tanh" | "sigmoid";

export interface MlpOptions {
  /** Between layers (none after the last). Default relu. */
  activation?: Activation;
  /** Element type of the params (default f32). */
  dtype?: DType;
}

/** A type alias, not an interface, so that it is assignable to Tree. */
export type MlpParams = { layers: { w: Tensor; b: Tensor }[] };

export interface Mlp {
  /** Fresh params: He-normal weights for relu/gelu, Xavier-uniform (torch's gain) for tanh/sigmoid; zero biases. */
  init(rng: RandomSource): MlpParams;
  /**
   * Logits [batch, sizes.at(-1)] for x [batch, sizes[0]]. `params` must be what init returns:
   * each leaf's shape is checked against the sizes, and its dtype for consistency (below).
   */
  apply(params: Tree, x: Tensor): Tensor;
}

const ACTIVATIONS = { relu, gelu, tanh, sigmoid } as const;
const FLOATS: readonly DType[] = ["f32", "f64", "f16", "bf16"];
const HALVES: readonly DType[] = ["f16", "bf16"];
/** torch.nn.init.calculate_gain of each nonlinearity (for the Xavier-initialised ones). */
const GAINS = { tanh: 5 / 3, sigmoid: 1 } as const;

/** A multilayer perceptron with layer widths `sizes` (input first, logits last). */
export function mlp(sizes: readonly number[], opts: MlpOptions = {}): Mlp {
  if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every((s) => Number.isInteger(s) && s > 0)) {
    throw new RangeError(
      `plait: mlp: argument sizes must list at least 2 positive integers, got ${JSON.stringify(sizes)}`,
    );
  }
  const activation = opts.activation ?? "relu";
  const act = ACTIVATIONS[activation];
  if (!Object.hasOwn(ACTIVATIONS, activation)) {
    throw new RangeError(
      `plait: mlp: option activation must be one of ${Object.keys(ACTIVATIONS).join(", ")}, got ${JSON.stringify(activation)}`,
    );
  }
  const dtype = opts.dtype ?? "f32";
  const depth = sizes.length - 1;
  return {
    init(rng) {
      const layers = [];
      for (let i = 0; i < depth; i++) {
        const shape = [sizes[i], sizes[i + 1]];
        const w =
          activation === "tanh" || activation === "sigmoid"
            ? xavierUniform(rng, shape, { dtype, gain: GAINS[activation] })
            : heNormal(rng, shape, { dtype });
        layers.push({ w, b: zerosInit([sizes[i + 1]], { dtype }) });
      }
      return { layers };
    },
    apply(params, x) {
      const layers = checkParams(params, sizes);
      if (!(x instanceof Tensor) || x.ndim !== 2 || x.shape[1] !== sizes[0]) {
        const got = x instanceof Tensor ? `shape ${shapeStr(x.shape)}` : String(x);
        throw new RangeError(`plait: mlp.apply: argument x must be [batch, ${sizes[0]}], got ${got}`);
      }
      let h = x;
      for (let i = 0; i < depth; i++) {
        h = linear(h, layers[i].w, layers[i].b);
        if (i < depth - 1) h = act(h);
      }
      return h;
    },
  };
}

/**
 * `params` as init makes them for `sizes`: { layers: [{ w [in, out], b [out] }, …] } and nothing
 * else, every leaf a float tensor of its layer's shape. Dtypes are those the precision
 * transforms may hand a model of any configured dtype: all weights share one float dtype, all
 * biases one, and a bias has its weight's dtype or is f32 beside an f16/bf16 weight (mixed
 * precision keeps 1-D leaves in f32). Errors name the leaf, what it is and what was expected.
 */
function checkParams(params: Tree, sizes: readonly number[]): MlpParams["layers"] {
  const model = `mlp([${sizes.join(", ")}])`;
  const depth = sizes.length - 1;
  const form = `{ layers: [${depth} × { w, b }] } as init() returns`;
  const layers = isPlainObject(params) ? params.layers : undefined;
  if (!Array.isArray(layers) || layers.length !== depth) {
    const got = Array.isArray(layers) ? `${layers.length} layers` : "no layers array";
    throw new TypeError(`plait: mlp.apply: argument params must be ${form} for ${model}, got ${got}`);
  }
  for (const key of Object.keys(params as object)) {
    if (key !== "layers") throw new TypeError(`plait: mlp.apply: params.${key} is not a param of ${model} (${form})`);
  }
  let first: { w: Tensor; b: Tensor } | undefined;
  for (let i = 0; i < depth; i++) {
    const layer: unknown = layers[i];
    const at = `params.layers[${i}]`;
    if (!isPlainObject(layer)) throw new TypeError(`plait: mlp.apply: ${at} must be { w, b }, got ${describe(layer)}`);
    for (const key of Object.keys(layer)) {
      if (key !== "w" && key !== "b") throw new TypeError(`plait: mlp.apply: ${at}.${key} is not a param of ${model}`);
    }
    const { w, b } = layer;
    const wDTypes = first ? [first.w.dtype] : FLOATS;
    checkLeaf(`${at}.w`, w, [sizes[i], sizes[i + 1]], wDTypes, model);
    const bDTypes = first ? [first.b.dtype] : HALVES.includes(w.dtype) ? [w.dtype, "f32" as const] : [w.dtype];
    checkLeaf(`${at}.b`, b, [sizes[i + 1]], bDTypes, model);
    first ??= { w, b };
  }
  return layers as MlpParams["layers"];
}

function checkLeaf(
  path: string,
  leaf: unknown,
  shape: readonly number[],
  dtypes: readonly DType[],
  model: string,
): asserts leaf is Tensor {
  const like = (d: string) => `${d}${shapeStr(shape)}`;
  const expected =
    leaf instanceof Tensor && dtypes.includes(leaf.dtype)
      ? like(leaf.dtype)
      : dtypes === FLOATS
        ? `a float tensor ${shapeStr(shape)} (${FLOATS.join(", ")})`
        : dtypes.map(like).join(" or ");
  const ok = leaf instanceof Tensor && dtypes.includes(leaf.dtype) && shapeStr(leaf.shape) === shapeStr(shape);
  if (!ok) throw new TypeError(`plait: mlp.apply: ${path} is ${describe(leaf)}, expected ${expected} for ${model}`);
}

/** How a model's apply names a value of the wrong kind in its errors. */
export function describe(v: unknown): string {
  if (v instanceof Tensor) return v.describe();
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? `a ${v.constructor?.name ?? "null-prototype object"}` : `${typeof v} ${String(v)}`;
}
