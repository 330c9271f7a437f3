import { treeLeaves } from "../core/tree.ts";
import type { Step } from "../step/contract.ts";
import { wrapStep } from "../step/paramDType.ts";
import { allReduceBuckets, bucketLimits, planBuckets } from "./buckets.ts";
import { enterStrategy } from "./nesting.ts";
import { syncParams } from "./syncParams.ts";

export interface DDPOptions {
  /** Size limit of each gradient bucket after the first, in MiB (torch's bucket_cap_mb). Default 25. */
  bucketMB?: number;
  /** Size limit of the first bucket, in MiB (torch's 1 MiB default). Default 1. */
  firstBucketMB?: number;
}

/**
 * Distributed data parallel (torch's DDP as a transform): every rank runs `step` on its own
 * shard of the global batch, and the gradients are replaced by their mean over ranks
 * (ctx.comm, "avg"), reduced in buckets in reverse parameter order. Before the first step with
 * a params tree, every rank's params are checked to have the same structure, shapes and dtypes
 * (an error names the rank and tensor) and rank 0's values are broadcast into them. When the
 * params are a precision transform's compute copies (withAMP(withDDP(s))), a broadcast would not
 * last, so their values are checked equal to rank 0's instead.
 *
 * Accumulating outputs pass through without communication, so withDDP(withAccumulation(s, k))
 * reduces once per window (no_sync). Skipped outputs pass through too: a skip is a global
 * decision (withAMP takes it through ctx.comm), so every rank skips the same steps. Grads that
 * still carry a loss scale (withAMP outside) are reduced as they are: the mean of scaled grads
 * is the scaled mean, exactly, since the scale is a power of two.
 */
export function withDDP<B>(step: Step<B>, opts: DDPOptions = {}): Step<B> {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`plait: withDDP: options must be an object like { bucketMB: 25 }, got ${String(opts)}`);
  }
  const limits = bucketLimits("withDDP", opts);
  const synced = new WeakSet<object>();
  return wrapStep(step, async (params, batch, ctx) => {
    const inner = enterStrategy("withDDP", ctx);
    if (!synced.has(params)) {
      await syncParams("withDDP", params, ctx.comm, ctx.paramsCopiedBy);
      synced.add(params);
    }
    const out = await step(params, batch, inner);
    if (out.accumulating || out.skip || ctx.worldSize === 1) return out;
    const leaves = treeLeaves(out.grads);
    await allReduceBuckets(ctx.comm, leaves, planBuckets(leaves, limits), "avg");
    return out;
  });
}
