import type { DType } from "../core/dtype.ts";
import { Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
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
  /** Logits [batch, sizes.at(-1)] for x [batch, sizes[0]]. */
  apply(params: Tree, x: Tensor): Tensor;
}

const ACTIVATIONS = { relu, gelu, tanh, sigmoid } as const;
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
      const layers = (params as unknown as MlpParams)?.layers;
      if (!Array.isArray(layers) || layers.length !== depth) {
        throw new TypeError(`plait: mlp: argument params must be { layers: [${depth} × { w, b }] } as init() returns`);
      }
      let h = x;
      for (let i = 0; i < depth; i++) {
        const { w, b } = layers[i];
        if (!(w instanceof Tensor) || !(b instanceof Tensor)) {
          throw new TypeError(`plait: mlp: params.layers[${i}] must be { w: Tensor, b: Tensor }`);
        }
        h = linear(h, w, b);
        if (i < depth - 1) h = act(h);
      }
      return h;
    },
  };
}
