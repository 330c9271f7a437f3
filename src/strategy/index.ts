// Strategy transforms: how a step's work, gradients and params are spread over the ranks of ctx.comm.
export { type DDPOptions, withDDP } from "./ddp.ts";
export { type DeepSpeedConfig, type DeepSpeedPlan, withDeepSpeed } from "./deepspeed.ts";
export { type DPStep, withDP } from "./dp.ts";
export { type FSDPOptions, parentPath, withFSDP } from "./fsdp.ts";
export { STRATEGY_NAMES, type StrategyName } from "./names.ts";
export { type ShardedParams, type ShardedStep, type ShardingOptions, shardedStep } from "./sharded.ts";
export { withZeRO, type ZeROOptions, type ZeROStage, type ZeROStep } from "./zero.ts";
