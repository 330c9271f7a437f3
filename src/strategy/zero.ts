import { checkOptions } from "../core/options.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { shardedStep } from "./sharded.ts";

export type ZeROStage = 1 | 2 | 3;

export interface ZeROOptions {
  /** 1: optimizer state sharded; 2: gradients too (reduce-scatter); 3: params too (gathered for each step). */
  stage: ZeROStage;
}

/**
 * ZeRO (DeepSpeed's Zero Redundancy Optimizer) as a transform: all params form one flat vector,
 * and `train` holds this rank's shard of it, so the optimizer's state and the master params are
 * sharded (stage 1); the reduced gradient exists only as shards (stage 2, reduce-scatter); the
 * full params exist only during a step (stage 3; here stages 1 and 2 gather them per step too).
 * See shardedStep for how, and why the params come out the same as withDDP's. Usage:
 *
 *   const trainer = train(withZeRO(withAMP(loss, { precision: "bf16-mixed" }), { stage: 2 }), adamw({ lr }), { comm });
 *   let state = await trainer.init(params);     // every rank: checks, broadcasts rank 0's, shards
 *   ...
 *   const full = await trainer.gather(state);   // for evaluation or a full checkpoint
 *
 * Precision transforms go inside: outside, they would see the flat shards instead of the params.
 */
export function withZeRO<B>(step: StepLike<B>, opts: ZeROOptions): Step<B> {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`plait: withZeRO: options must be an object like { stage: 2 }, got ${String(opts)}`);
  }
  checkOptions("withZeRO", opts, ["stage"]);
  const stage = opts.stage;
  if (stage !== 1 && stage !== 2 && stage !== 3) {
    throw new RangeError(`plait: withZeRO: option stage must be 1, 2 or 3, got ${JSON.stringify(stage)}`);
  }
  return shardedStep(step, { op: "withZeRO", key: "zero", stage, unitOf: () => "all" });
}
