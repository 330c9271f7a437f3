export { type AccumulationState, withAccumulation } from "./accumulate.ts";
export { type ClipOptions, withGradClip } from "./clip.ts";
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
