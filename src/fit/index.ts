export type {
  Callback,
  EpochEndEvent,
  EpochEndResult,
  EpochLogEvent,
  Mode as MonitorMode,
} from "./callback.ts";
export { lineChart, type Series } from "./chart.ts";
export { type EarlyStoppingOptions, type EarlyStoppingState, earlyStopping } from "./earlyStopping.ts";
export {
  type BatchSource,
  type FitOptions,
  type FitResult,
  fit,
  type ValidateCtx,
  type ValidateLoader,
} from "./fit.ts";
export {
  LIGHTNING_STRATEGIES,
  type LightningPrecision,
  type LightningStrategy,
  type Setup,
  type SetupOptions,
  setup,
} from "./lightning.ts";
export {
  type ChartLoggerOptions,
  type CsvLoggerOptions,
  chartLogger,
  csvLogger,
  type LrMonitorOptions,
  lrMonitor,
  type TableState,
} from "./loggers.ts";
export type { LogFn, LogOptions, Reduce } from "./metrics.ts";
export { type ModelCheckpointOptions, type ModelCheckpointState, modelCheckpoint } from "./modelCheckpoint.ts";
export { type ProgressMode, progressMode } from "./progress.ts";
export { type EpochRecord, type StepEvent, type TrainEpochsOptions, trainEpochs } from "./trainEpochs.ts";
