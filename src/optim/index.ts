// Optimizers as fused WASM kernels over explicit state, and learning-rate schedules.
export { type AdamOptions, adam, adamw } from "./adam.ts";
export { constant, cosineDecay, joinSchedules, linearWarmup, warmupCosine } from "./schedule.ts";
export { type SgdOptions, sgd } from "./sgd.ts";
export type { LearningRate, Optimizer, OptimizerKind, OptState, Schedule } from "./types.ts";
