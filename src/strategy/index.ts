// Strategy transforms: how a step's work, gradients and params are spread over the ranks of ctx.comm.
export { type DDPOptions, withDDP, withDDP2 } from "./ddp.ts";
export { type DeepSpeedConfig, type DeepSpeedPlan, withDeepSpeed } from "./deepspeed.ts";
export { withDP } from "./dp.ts";
export { type FSDPOptions, parentPath, withFSDP } from "./fsdp.ts";
export { type HorovodOptions, withHorovod } from "./horovod.ts";
export { STRATEGY_NAMES, type StrategyName } from "./names.ts";
export { type Layout, type ShardedParams, type ShardingOptions, shardedStep } from "./sharded.ts";
export { withZeRO, type ZeROOptions, type ZeROStage } from "./zero.ts";
