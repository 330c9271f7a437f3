import { checkOptions } from "../core/options.ts";
import { lossScaling } from "../precision/lossScaling.ts";
import { resolveScaler, type ScalerOption } from "../precision/scalerOption.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { shardedStep } from "./sharded.ts";

export interface FSDPOptions {
  /**
   * The unit each param leaf belongs to, given its path ("params.layers[0].w"): FSDP's wrap policy.
   * Default: the leaf's parent, so each layer's { w, b } is one unit.
   */
  unitOf?: (path: string) => string;
  /**
   * FSDP's MixedPrecision param_dtype: each step gathers the params in this dtype and runs in it
   * (ctx.computeDType); the gradients come back and are reduced in f32 (reduce_dtype), and the
   * shards train holds stay f32. Default: none (everything in the shards' dtype).
   */
  paramDType?: "bf16" | "f16";
  /** f16 only: the loss scaler, as withAMP's option (default torch's GradScaler); its skip is global. */
  scaler?: ScalerOption;
  /** "FULL_SHARD" (default: params, grads and optimizer state sharded, ≈ ZeRO-3) or "SHARD_GRAD_OP" (≈ ZeRO-2). */
  sharding?: "FULL_SHARD" | "SHARD_GRAD_OP";
}

/** The path of a leaf's parent: "params.layers[0].w" → "params.layers[0]". */
export const parentPath = (path: string): string => path.replace(/(\.[^.[\]]*|\[\d+\])$/, "");

/**
 * Fully sharded data parallel (torch's FSDP) as a transform: each unit of params is flattened and
 * sharded over the ranks on its own (one allGather and one reduceScatter per unit and step), and
 * `train` holds this rank's shards (its init makes them; `trainer.gather` gives the full params
 * back). With `paramDType`, the shards are cast before the allGather, so the full params only ever
 * exist in the half dtype (half the traffic and memory), the step computes in it, and the f32
 * gradients are reduce-scattered into the f32 shards; under f16 the loss is scaled and the
 * overflow check is global (every rank skips together, as ShardedGradScaler's all-reduced
 * found_inf). withGradClip outside takes the global norm over the shards. With 2 ranks it gives
 * withDDP(withPrecision(s, "<half>-true", { masterWeights: true }))'s params.
 *
 * All units are gathered before the step and freed after it: the step is one function, with no
 * per-layer hooks, so a unit cannot be freed while the forward is still running.
 */
export function withFSDP<B>(step: StepLike<B>, opts?: FSDPOptions): Step<B> {
  const {
    paramDType,
    sharding = "FULL_SHARD",
    unitOf = parentPath,
  } = checkOptions("withFSDP", opts, ["unitOf", "paramDType", "scaler", "sharding"]);
  if (paramDType !== undefined && paramDType !== "bf16" && paramDType !== "f16") {
    throw new RangeError(
      `plait: withFSDP: option paramDType must be "bf16" or "f16", got ${JSON.stringify(paramDType)}`,
    );
  }
  if (sharding !== "FULL_SHARD" && sharding !== "SHARD_GRAD_OP") {
    throw new RangeError(
      `plait: withFSDP: option sharding must be "FULL_SHARD" or "SHARD_GRAD_OP", got ${JSON.stringify(sharding)}`,
    );
  }
  if (typeof unitOf !== "function") {
    throw new TypeError(`plait: withFSDP: option unitOf must be a function from a leaf's path to its unit's name`);
  }
  const scaler = opts?.scaler;
  if (scaler !== undefined && paramDType !== "f16") {
    throw new TypeError(
      `plait: withFSDP: option scaler needs paramDType "f16" (bf16 and f32 need no loss scaling), got paramDType ${JSON.stringify(paramDType)}`,
    );
  }
  return shardedStep(step, {
    op: "withFSDP",
    key: "fsdp",
    scaling:
      paramDType === "f16" ? lossScaling("withFSDP", "fsdpScaler", resolveScaler("withFSDP", scaler)) : undefined,
    stage: sharding === "FULL_SHARD" ? 3 : 2,
    unitOf,
    gatherDType: paramDType,
  });
}
