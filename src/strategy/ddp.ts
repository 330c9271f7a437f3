import { checkOptions } from "../core/options.ts";
import { treeLeaves } from "../core/tree.ts";
import type { Step, StepLike } from "../step/contract.ts";
import { transform } from "../step/transform.ts";
import { allReduceBuckets, bucketLimits, bucketPlanner } from "./buckets.ts";
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
 * (ctx.comm, "avg"), reduced in buckets in reverse parameter order. Its init checks that every
 * rank's params (as the inner init returns them: f32 masters under withAMP, cast ones under
 * withPrecision) have the same structure, shapes and dtypes (an error names the rank and
 * tensor), and broadcasts rank 0's values into them.
 *
 * Accumulating outputs pass through without communication, so withDDP(withAccumulation(s, k))
 * reduces once per window (no_sync). Skipped outputs pass through too: a skip is a global
 * decision (withAMP takes it through ctx.comm), so every rank skips the same steps. Grads that
 * still carry a loss scale (withAMP outside) are reduced as they are: the mean of scaled grads
 * is the scaled mean, exactly, since the scale is a power of two.
 */
export function withDDP<B>(step: StepLike<B>, opts?: DDPOptions): Step<B> {
  return dataParallel("withDDP", step, opts);
}

/**
 * DDP2 (Lightning 1.x), which Horovod calls hierarchical allreduce: withDDP, with the gradients'
 * mean taken among the process's threads (shm), across processes by one rank per process (MPI),
 * then back to the threads. That is how every collective of a processes × threads world runs (the
 * HierComm that launch() and spawn() make under mpirun or srun with devices > 1), so withDDP2 and
 * withDDP reduce the same way there; in a world of one level (threads of one process, or one rank
 * per MPI process) the three phases are one. The result equals a flat reduction up to the order
 * of the sums: ((g0 + g1) + (g2 + g3)) / 4 rather than (((g0 + g1) + g2) + g3) / 4.
 */
export function withDDP2<B>(step: StepLike<B>, opts?: DDPOptions): Step<B> {
  return dataParallel("withDDP2", step, opts);
}

function dataParallel<B>(name: string, step: StepLike<B>, opts: DDPOptions | undefined): Step<B> {
  const plan = bucketPlanner(bucketLimits(name, checkOptions(name, opts, ["bucketMB", "firstBucketMB"])));
  return transform(step, {
    name,
    async init(params, ctx, inner) {
      const done = await inner(params);
      await syncParams(name, done.params, ctx.comm);
      return done;
    },
    enter: (params, batch, ctx) => ({ params, batch, ctx: enterStrategy(name, ctx) }),
    async update(out, ctx) {
      if (ctx.worldSize === 1) return out;
      const leaves = treeLeaves(out.grads);
      await allReduceBuckets(ctx.comm, leaves, plan(leaves), "avg");
      return out;
    },
  });
}
