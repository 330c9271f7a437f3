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
