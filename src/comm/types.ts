import type { Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";

/** How values from all ranks are combined. "avg" is the sum divided by the world size. */
export type ReduceOp = "sum" | "avg" | "min" | "max";

export const REDUCE_OPS: readonly ReduceOp[] = ["sum", "avg", "min", "max"];

/** Per-call options: every collective waits at most `timeoutMs` and stops early on `signal`. */
export interface CollectiveOptions {
  /** Milliseconds to wait for the other ranks; default: the communicator's (10 minutes unless set). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A communicator over `worldSize` ranks. Every rank calls the same collectives in the same order
 * with tensors of the same dtype and size; a mismatch is detected and named, never reduced.
 * Reductions are deterministic: each element is combined in rank order 0, 1, …, N−1 (f16 and
 * bf16 in f32, rounded back once to nearest even), so every rank gets the same bits, run after run.
 */
export interface Comm {
  readonly rank: number;
  readonly worldSize: number;
  /** Reduces in place across ranks; a tree is reduced leaf by leaf. Resolves to `x`. */
  allReduce<T extends Tree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T>;
  /** Copies rank `root`'s values into `x` on every rank, in place (leaf by leaf for a tree). */
  broadcast<T extends Tree>(x: T, root: number, opts?: CollectiveOptions): Promise<T>;
  /** A new 1-D tensor of worldSize·x.size elements: every rank's `x`, in rank order. */
  allGather(x: Tensor, opts?: CollectiveOptions): Promise<Tensor>;
  /**
   * A new 1-D tensor: this rank's shard of the reduction of `x` over ranks. The shards split
   * x.size as `shardRange` does: the first (size mod worldSize) ranks get one element more.
   */
  reduceScatter(x: Tensor, op: ReduceOp, opts?: CollectiveOptions): Promise<Tensor>;
  /** Resolves once every rank has called it. */
  barrier(opts?: CollectiveOptions): Promise<void>;
  /**
   * Set when allReduce of a tree whose leaves share a dtype is one collective over the leaves in
   * place (the shm backend): bucketing strategies then pass a bucket's leaves as they are rather
   * than copy them into one flat tensor to save calls.
   */
  readonly fusesLeaves?: boolean;
}

/**
 * Rank `rank`'s shard of `size` elements split over `worldSize` ranks: contiguous, in rank
 * order, sizes differing by at most one (the first size mod worldSize ranks get the extra one).
 */
export function shardRange(size: number, worldSize: number, rank: number): { start: number; count: number } {
  const base = Math.floor(size / worldSize);
  const extra = size % worldSize;
  return { start: rank * base + Math.min(rank, extra), count: base + (rank < extra ? 1 : 0) };
}
