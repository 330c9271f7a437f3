/** The strategies by name, as `plait demo --strategy` takes them (Lightning's registry names). */
export const STRATEGY_NAMES = ["ddp", "ddp2", "horovod", "dp", "zero1", "zero2", "zero3", "fsdp"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];
