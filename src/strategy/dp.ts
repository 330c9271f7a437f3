import { broadcastText, describeTree, rebuildTree } from "../comm/treeMessage.ts";
import { shardRange } from "../comm/types.ts";
import { scale } from "../core/arith.ts";
import { runtime } from "../core/runtime.ts";
import { keep } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import type { Ctx, InitCtx, Step, StepLike, StepOut } from "../step/contract.ts";
import { toStep, transform } from "../step/transform.ts";
import { allReduceBuckets, bucketLimits, planBuckets } from "./buckets.ts";
import { enterStrategy } from "./nesting.ts";

const OP = "withDP";
const LIMITS = bucketLimits(OP, {});

/**
 * Data parallel with one logical replica (Lightning's DataParallelStrategy, torch's
 * DataParallel, with threads): only rank 0 runs the training loop, holds the params and the
 * optimizer, and sees whole batches. Each step it broadcasts the params (the replicas of the
 * step) and the batch to the other ranks, which wait in `trainer.serve(state)`; every rank runs the
 * inner step on its contiguous slice of the batch's rows (split as shardRange does), and the
 * gradients are combined into the full batch's mean gradient, weighted by slice size (an
 * allReduce: the serving ranks drop their copy), as is the loss. So rank 0's step returns what
 * one device would on the whole batch, up to summation order. Inner transforms run on every rank
 * with each rank's own state; their decisions are global (withAMP's skip), so those states agree.
 */
export function withDP<B>(step: StepLike<B>): Step<B> {
  const inner = toStep(OP, step);
  return transform(inner, {
    name: OP,
    async run(params, batch, ctx) {
      const c = enterStrategy(OP, ctx);
      if (ctx.worldSize === 1) return inner.run(params, batch, c);
      if (ctx.rank !== 0) {
        throw new Error(
          `plait: ${OP}: the step runs on rank 0 only (one logical replica); rank ${ctx.rank} calls trainer.serve(state) instead`,
        );
      }
      const p = describeTree(params);
      const b = describeTree(batch);
      checkBatch(b.leaves, ctx.worldSize);
      await broadcastText(ctx.comm, JSON.stringify({ params: p.json, batch: b.json }), 0);
      await ctx.comm.broadcast(p.leaves, 0);
      await ctx.comm.broadcast(b.leaves, 0);
      return onSlice(inner, params, b.json, b.leaves, c);
    },
    async serve(ctx: Ctx): Promise<void> {
      if (ctx.rank === 0) throw new Error(`plait: ${OP}: serve() is for the ranks other than 0; rank 0 trains`);
      // the inner transforms' states on this rank, threaded from one served step to the next
      let state = ctx.state;
      let replica: { json: string; value: unknown; leaves: Tensor[] } | undefined;
      try {
        for (;;) {
          const msg = JSON.parse(await broadcastText(ctx.comm, undefined, 0)) as {
            stop?: true;
            params: string;
            batch: string;
          };
          if (msg.stop) return;
          if (replica?.json !== msg.params) {
            for (const leaf of replica?.leaves ?? []) leaf.dispose();
            replica = { json: msg.params, ...rebuildTree(msg.params) };
            for (const leaf of replica.leaves) keep(leaf);
          }
          await ctx.comm.broadcast(replica.leaves, 0);
          const batch = rebuildTree(msg.batch).leaves;
          try {
            await ctx.comm.broadcast(batch, 0);
            const c: Ctx = {
              ...ctx,
              computeDType: replica.leaves[0]?.dtype ?? "f32",
              state,
              distributedBy: OP,
            };
            const out = await onSlice(inner, replica.value as Tree, msg.batch, batch, c);
            state = { ...state, ...out.state };
            for (const g of treeLeaves(out.grads)) g.dispose();
          } finally {
            for (const t of batch) t.dispose();
          }
        }
      } finally {
        for (const leaf of replica?.leaves ?? []) leaf.dispose();
      }
    },
    async stop(ctx: InitCtx): Promise<void> {
      if (ctx.rank !== 0) throw new Error(`plait: ${OP}: stop() is for rank 0, which ends the others' serve()`);
      if (ctx.worldSize > 1) await broadcastText(ctx.comm, JSON.stringify({ stop: true }), 0);
    },
  });
}

/** Runs `step` on this rank's rows of the batch, then combines grads and loss over ranks. */
async function onSlice<B>(step: Step<B>, params: Tree, json: string, leaves: Tensor[], ctx: Ctx): Promise<StepOut> {
  const rows = leaves[0].shape[0];
  const { start, count } = shardRange(rows, ctx.worldSize, ctx.rank);
  const made: Tensor[] = [];
  const batch = JSON.parse(json, (_key, v) => {
    if (v === null || typeof v !== "object" || !("$tensor" in v)) return v;
    const slice = rowsOf(leaves[v.$tensor as number], start, count);
    made.push(slice);
    return slice;
  }) as B;
  try {
    const out = await step.run(params, batch, ctx);
    if (out.accumulating || out.skip) return out;
    // the full batch's mean is Σ (rows_r / rows) · mean_r: with equal slices, the average
    const equal = rows % ctx.worldSize === 0;
    const grads = treeLeaves(out.grads);
    if (!equal) for (const g of grads) scale(g, count / rows, g);
    await allReduceBuckets(ctx.comm, grads, planBuckets(grads, LIMITS), equal ? "avg" : "sum");
    const loss = new Tensor([1], "f64");
    try {
      loss.data()[0] = (out.loss * count) / rows;
      await ctx.comm.allReduce(loss, "sum");
      return { ...out, loss: loss.data()[0] };
    } finally {
      loss.dispose();
    }
  } finally {
    for (const t of made) t.dispose();
  }
}

/** A new tensor holding rows [start, start + count) of `t`. */
function rowsOf(t: Tensor, start: number, count: number): Tensor {
  const out = new Tensor([count, ...t.shape.slice(1)], t.dtype);
  const rowBytes = t.byteLength / t.shape[0];
  runtime().k.as.copy_bytes(out.ptr, t.ptr + start * rowBytes, count * rowBytes);
  return out;
}

/** Every tensor of the batch is split along its first dimension, which they must share. */
function checkBatch(leaves: Tensor[], worldSize: number): void {
  if (leaves.length === 0) throw new TypeError(`plait: ${OP}: the batch holds no tensors to split across ranks`);
  const rows = leaves[0].shape[0];
  for (const [i, t] of leaves.entries()) {
    if (t.ndim === 0 || t.shape[0] !== rows) {
      throw new RangeError(
        `plait: ${OP}: batch tensor ${i} is ${t.describe()}, expected ${rows} rows like batch tensor 0: every tensor in the batch is split along its first dimension`,
      );
    }
  }
  if (rows < worldSize) {
    throw new RangeError(`plait: ${OP}: the batch has ${rows} rows, fewer than the ${worldSize} ranks that split it`);
  }
}
