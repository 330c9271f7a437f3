// Initialisers and the small MLP helper (src/nn).
export {
  heNormal,
  heUniform,
  type InitOptions,
  type RandomSource,
  xavierNormal,
  xavierUniform,
  zerosInit,
} from "./init.ts";
export { type Activation, type Mlp, type MlpOptions, type MlpParams, mlp } from "./mlp.ts";
