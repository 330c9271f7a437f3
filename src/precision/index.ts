export { type AmpOptions, withAMP } from "./amp.ts";
export { type AutocastDType, autocast } from "./autocast.ts";
export { unscale } from "./lossScaling.ts";
export { type CastPolicy, mixedPolicy, PRECISIONS, type Precision, wholePolicy } from "./policy.ts";
export { type PrecisionOptions, withPrecision } from "./precision.ts";
export {
  adjustScaler,
  type DeepSpeedScaler,
  type DeepSpeedScalerOptions,
  deepspeedScaler,
  type LossScaler,
  type NoScaler,
  noScaler,
  type StaticScaler,
  staticScaler,
  type TorchScaler,
  type TorchScalerOptions,
  torchScaler,
} from "./scaler.ts";
export type { ScalerOption } from "./scalerOption.ts";
