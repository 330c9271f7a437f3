import { runtime } from "../core/runtime.ts";
import { checkTensor, Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { CommError } from "./errors.ts";
import { type CollectiveOptions, type Comm, type ReduceOp, shardRange } from "./types.ts";
import { checkOp, checkReducible, checkRoot, leavesOf } from "./validate.ts";

/**
 * A world of processes × threads: `processes` processes (an MPI world, say), each running the same
 * number of ranks as threads over one shared memory. Global rank = processRank · localSize +
 * local.rank, so a process's ranks are consecutive.
 *
 * Every collective runs in three phases (Horovod's hierarchical allreduce, Lightning's DDP2): among
 * the process's threads over `local`, across processes over `cross` by local rank 0 alone (the only
 * thread that holds it: MPI is called from the thread that initialised it), then back to the
 * threads from local rank 0. An average is the average of the processes' averages, exact because
 * every process has the same number of ranks. Reductions are deterministic (each phase combines in
 * rank order), but not in flat rank order: ((x0 + x1) + (x2 + x3)) rather than (((x0 + x1) + x2) + x3).
 */
export class HierComm implements Comm {
  readonly rank: number;
  readonly worldSize: number;

  constructor(
    /** The process's threads (ShmComm, or a world of one). */
    readonly local: Comm,
    /** Across processes: set on local rank 0 only. */
    readonly cross: Comm | undefined,
    readonly processRank: number,
    readonly processes: number,
  ) {
    if ((local.rank === 0) !== (cross !== undefined)) {
      throw new Error(
        `plait: HierComm: local rank 0 (and only it) holds the cross-process comm; got local rank ${local.rank} ${cross ? "with" : "without"} one`,
      );
    }
    if (cross && (cross.rank !== processRank || cross.worldSize !== processes)) {
      throw new Error(
        `plait: HierComm: the cross-process comm is rank ${cross.rank} of ${cross.worldSize}, expected ${processRank} of ${processes}`,
      );
    }
    this.rank = processRank * local.worldSize + local.rank;
    this.worldSize = processes * local.worldSize;
  }

  async allReduce<T extends Tree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    checkOp("allReduce", op);
    const leaves = leavesOf("allReduce", x);
    for (const [i, leaf] of leaves.entries())
      checkReducible("allReduce", leaf, op, x instanceof Tensor ? "x" : `x leaf ${i}`);
    await this.inside(() => this.local.allReduce(x, op, opts));
    if (this.cross) await this.across(() => this.cross!.allReduce(x, op, opts));
    await this.inside(() => this.local.broadcast(x, 0, opts));
    return x;
  }

  async broadcast<T extends Tree>(x: T, root: number, opts?: CollectiveOptions): Promise<T> {
    leavesOf("broadcast", x);
    checkRoot("broadcast", root, this.worldSize);
    const k = this.local.worldSize;
    // root's process: its thread → local rank 0; then across; then every process's threads
    await this.inside(() => this.local.broadcast(x, root % k, opts));
    if (this.cross) await this.across(() => this.cross!.broadcast(x, Math.floor(root / k), opts));
    await this.inside(() => this.local.broadcast(x, 0, opts));
    return x;
  }

  async allGather(x: Tensor, opts?: CollectiveOptions): Promise<Tensor> {
    checkTensor("allGather", "x", x);
    const mine = await this.inside(() => this.local.allGather(x, opts));
    let all: Tensor;
    try {
      all = this.cross
        ? await this.across(() => this.cross!.allGather(mine, opts))
        : new Tensor([this.worldSize * x.size], x.dtype);
    } finally {
      mine.dispose();
    }
    try {
      await this.inside(() => this.local.broadcast(all, 0, opts));
    } catch (e) {
      all.dispose();
      throw e;
    }
    return all;
  }

  /** The allreduce of a copy of `x`, then this rank's shard of it (twice the traffic of a flat one). */
  async reduceScatter(x: Tensor, op: ReduceOp, opts?: CollectiveOptions): Promise<Tensor> {
    checkReducible("reduceScatter", checkTensor("reduceScatter", "x", x), checkOp("reduceScatter", op));
    const { as } = runtime().k;
    const full = new Tensor([x.size], x.dtype);
    try {
      as.copy_bytes(full.ptr, x.ptr, x.byteLength);
      await this.allReduce(full, op, opts);
      const { start, count } = shardRange(x.size, this.worldSize, this.rank);
      const out = new Tensor([count], x.dtype);
      const bytes = x.byteLength / x.size;
      as.copy_bytes(out.ptr, full.ptr + start * bytes, count * bytes);
      return out;
    } finally {
      full.dispose();
    }
  }

  async barrier(opts?: CollectiveOptions): Promise<void> {
    await this.inside(() => this.local.barrier(opts));
    if (this.cross) await this.across(() => this.cross!.barrier(opts));
    await this.inside(() => this.local.barrier(opts));
  }

  /** A call across processes; a failure names the process it started at and its global ranks. */
  private async across<R>(call: () => Promise<R>): Promise<R> {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof CommError) || e.failedRank < 0) throw e;
      const k = this.local.worldSize;
      const first = e.failedRank * k;
      throw new CommError(
        `plait: process ${e.failedRank} (global ranks ${first}–${first + k - 1}): ${e.message}`,
        e.reason,
        first,
        { cause: e },
      );
    }
  }

  /** A call among this process's threads; a failure names the rank it started at by its global rank. */
  private async inside<R>(call: () => Promise<R>): Promise<R> {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof CommError) || e.failedRank < 0) throw e;
      const global = this.processRank * this.local.worldSize + e.failedRank;
      throw new CommError(
        `plait: rank ${global} (process ${this.processRank}, thread ${e.failedRank}): ${e.message}`,
        e.reason,
        global,
        { cause: e },
      );
    }
  }
}
