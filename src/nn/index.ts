// Initialisers and the small MLP helper (src/nn).

export {
  type AttentionOptions,
  type AttentionParams,
  type BlockInitOptions,
  type BlockParams,
  causalSelfAttention,
  type Dense,
  initAttention,
  initTransformerBlock,
  type Norm,
  transformerBlock,
} from "./attention.ts";
export { type Gpt, type GptOptions, type GptParams, gpt } from "./gpt.ts";
export {
  heNormal,
  heUniform,
  type InitOptions,
  type RandomSource,
  xavierNormal,
  xavierUniform,
  zerosInit,
} from "./init.ts";
export type { ApplyOptions, Conv2dLayerOptions, Layer } from "./layers.ts";
export * as layers from "./layers.ts";
export { type Activation, type Mlp, type MlpOptions, type MlpParams, mlp } from "./mlp.ts";
export {
  type CnnOptions,
  cnn,
  type Sequential,
  type SequentialOptions,
  type SequentialParams,
  sequential,
  summary,
} from "./sequential.ts";
