import { bytesOf, DTYPES, type DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { runtime } from "../core/runtime.ts";
import { checkTensor, Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { CommError, describeError } from "./errors.ts";
import { OP_CODE, REDUCE_KERNEL, SCRATCH_BYTES } from "./reduce.ts";
import { Control, D, H, R, STATE } from "./shm-control.ts";
import { type Call, DEFAULT_SPIN_MS, Rendezvous } from "./shm-wait.ts";
import { type CollectiveOptions, type Comm, REDUCE_OPS, type ReduceOp, shardRange } from "./types.ts";
import {
  checkOp,
  checkReducible,
  checkRoot,
  checkTimeout,
  checkTimeoutMs,
  flattenForComm,
  hashKey,
} from "./validate.ts";

const KIND = { allReduce: 1, broadcast: 2, allGather: 3, reduceScatter: 4, barrier: 5 } as const;
const KIND_NAMES = ["?", "allReduce", "broadcast", "allGather", "reduceScatter", "barrier"];
/** Descriptor words that must agree on every rank for a call to go ahead. */
const MATCHED = [D.seq, D.kind, D.dtype, D.op, D.count, D.root, D.leaf, D.leaves, D.tree];

export const DEFAULT_TIMEOUT_MS = 600_000;
/** Bytes per kernel call on the paths that touch peers' buffers: faults are checked in between. */
const CHUNK_BYTES = 1 << 20;
/** Below this many elements a kernel call stays on the calling thread (no kernel-pool split). */
const POOL_MIN_ELEMENTS = 1 << 15;
/** Elements per rank's slice of a large allreduce are a multiple of this (64-byte lines at f32). */
const SLICE_ALIGN = 16;

const SHM_OPTIONS = ["timeoutMs", "spinMs"] as const;

export interface ShmCommOptions {
  /** Default timeout of every collective, in ms (10 minutes unless set). */
  timeoutMs?: number;
  /**
   * The longest a waiting rank polls before it sleeps, in ms (default 0.05). Longer spins cut
   * latency when every rank has a core of its own, and waste cores when ranks share them; the
   * poll shortens itself (down to 0.01 ms) while peers keep coming later than it reaches.
   */
  spinMs?: number;
}

/**
 * The shared-memory communicator: ranks are threads of one process over one WebAssembly.Memory,
 * and every rank reads its peers' tensors in place.
 *
 * - allReduce up to the world's `smallBytes` (set when the control block is made; launchers use
 *   it only when ranks share cores): copy into this rank's staging buffer for the call's parity,
 *   arrive, then reduce every rank's staging buffer into x. One barrier per call: a rank can only
 *   rewrite a staging buffer two calls later, after every peer has arrived at the call in
 *   between, i.e. has finished reading it.
 * - larger allReduce: arrive, then reduce slice `rank` of every rank's x (read in place) and write
 *   the result into that slice of every rank's x; then wait until every rank has done its slice.
 * - reduceScatter / allGather / broadcast: arrive, read peers' buffers in place, wait for all.
 * Every element is combined in rank order by one kernel, so every rank gets the same bits.
 */
export class ShmComm implements Comm {
  readonly worldSize: number;
  private readonly ctl: Control;
  private readonly rv: Rendezvous;
  private readonly timeoutMs: number;
  private seq = 0;
  private busy = false;
  private readonly queue: (() => void)[] = [];
  /** Rank-private u32 tables of buffer addresses: staging (parity 0, 1), peers' buffers, one output. */
  private readonly tables: number;
  private readonly u32: Uint32Array;
  private readonly scratch: number;
  private readonly copyBytes: (dst: number, src: number, bytes: number) => void;
  /** This thread's reduction kernels by name (REDUCE_KERNEL). */
  private readonly kernels: Record<string, ReduceKernel>;
  /**
   * allReduce of a tree of one dtype runs as one collective over its leaves in place (see
   * reduceLeaves), so callers need not copy leaves into a bucket to save calls.
   */
  readonly fusesLeaves = true;
  /** This rank's leaf table for fused calls: u32 pairs (address, elements), read by the peers. */
  private leafTable = 0;
  private leafTableWords = 0;
  private mem32: Uint32Array;

  constructor(
    private readonly memory: WebAssembly.Memory,
    controlBase: number,
    readonly rank: number,
    opts: ShmCommOptions = {},
  ) {
    this.ctl = new Control(memory, controlBase);
    this.mem32 = new Uint32Array(memory.buffer);
    this.worldSize = this.ctl.worldSize;
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.worldSize) {
      throw new RangeError(`plait: ShmComm: rank must be an integer in [0, ${this.worldSize - 1}], got ${rank}`);
    }
    const o = checkOptions("ShmComm", opts, SHM_OPTIONS);
    this.timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs("ShmComm", o.timeoutMs);
    const spinMs = o.spinMs ?? DEFAULT_SPIN_MS;
    if (!(spinMs >= 0 && spinMs <= 1000)) {
      throw new RangeError(
        `plait: ShmComm: option spinMs must be a number of milliseconds in [0, 1000], got ${spinMs}`,
      );
    }
    this.rv = new Rendezvous(this.ctl, rank, spinMs);
    const { arena, pool, k } = runtime();
    const n = this.worldSize;
    this.tables = arena.alloc(4 * (3 * n + 1));
    this.u32 = new Uint32Array(memory.buffer, this.tables, 3 * n + 1);
    for (let s = 0; s < n; s++) {
      this.u32[s] = this.ctl.staging(s, 0);
      this.u32[n + s] = this.ctl.staging(s, 1);
    }
    this.scratch = arena.alloc(SCRATCH_BYTES * pool.size);
    this.copyBytes = k.as.copy_bytes as (dst: number, src: number, bytes: number) => void;
    this.kernels = Object.fromEntries(Object.entries(k.as).filter(([name]) => name.startsWith("coll_"))) as Record<
      string,
      ReduceKernel
    >;
  }

  async allReduce<T extends Tree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    checkOp("allReduce", op);
    const timeoutMs = opts === undefined ? this.timeoutMs : checkTimeout("allReduce", opts, this.timeoutMs);
    const signal = opts?.signal;
    if (x instanceof Tensor) {
      checkReducible("allReduce", checkTensor("allReduce", "x", x), op);
      if (this.busy) await this.turn();
      this.busy = true;
      try {
        const pending = this.reduceLeaf(x, op, 0, 1, 0, timeoutMs, signal);
        if (pending) await pending;
      } finally {
        this.leave();
      }
      return x;
    }
    const { leaves, key } = flattenForComm("allReduce", x);
    for (const [i, leaf] of leaves.entries()) checkReducible("allReduce", leaf, op, `x leaf ${i}`);
    const tree = hashKey(key);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      if (this.fusable(leaves)) {
        const pending = this.reduceLeaves(leaves, op, tree, timeoutMs, signal);
        if (pending) await pending;
        return x;
      }
      for (let i = 0; i < leaves.length; i++) {
        const pending = this.reduceLeaf(leaves[i], op, i, leaves.length, tree, timeoutMs, signal);
        if (pending) await pending;
      }
    } finally {
      this.leave();
    }
    return x;
  }

  async broadcast<T extends Tree>(x: T, root: number, opts?: CollectiveOptions): Promise<T> {
    const timeoutMs = checkTimeout("broadcast", opts, this.timeoutMs);
    const { leaves, key } = flattenForComm("broadcast", x);
    checkRoot("broadcast", root, this.worldSize);
    const tree = x instanceof Tensor ? 0 : hashKey(key);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      for (let i = 0; i < leaves.length; i++) {
        const t = leaves[i];
        const call = this.start("broadcast", timeoutMs, opts?.signal);
        this.post(call, KIND.broadcast, t, 0, root, i, leaves.length, tree);
        const pending = this.proceed(call, true, () => {
          if (this.rank !== root) this.copy(call, t.ptr, this.posted(call, root), t.byteLength);
        });
        if (pending) await pending;
      }
    } finally {
      this.leave();
    }
    return x;
  }

  async allGather(x: Tensor, opts?: CollectiveOptions): Promise<Tensor> {
    const timeoutMs = checkTimeout("allGather", opts, this.timeoutMs);
    checkTensor("allGather", "x", x);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      const call = this.start("allGather", timeoutMs, opts?.signal);
      const out = new Tensor([this.worldSize * x.size], x.dtype);
      this.copyBytes(out.ptr + this.rank * x.byteLength, x.ptr, x.byteLength);
      this.post(call, KIND.allGather, x, 0, 0, 0, 1, 0);
      try {
        const pending = this.proceed(call, true, () => {
          for (let s = 0; s < this.worldSize; s++) {
            if (s !== this.rank) this.copy(call, out.ptr + s * x.byteLength, this.posted(call, s), x.byteLength);
          }
        });
        if (pending) await pending;
      } catch (e) {
        out.dispose();
        throw e;
      }
      return out;
    } finally {
      this.leave();
    }
  }

  async reduceScatter(x: Tensor, op: ReduceOp, opts?: CollectiveOptions): Promise<Tensor> {
    checkOp("reduceScatter", op);
    const timeoutMs = checkTimeout("reduceScatter", opts, this.timeoutMs);
    checkReducible("reduceScatter", checkTensor("reduceScatter", "x", x), op);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      const call = this.start("reduceScatter", timeoutMs, opts?.signal);
      const { start, count } = shardRange(x.size, this.worldSize, this.rank);
      const out = new Tensor([count], x.dtype);
      this.post(call, KIND.reduceScatter, x, OP_CODE[op], 0, 0, 1, 0);
      try {
        const pending = this.proceed(call, true, () => {
          const n = this.worldSize;
          this.u32[3 * n] = out.ptr;
          this.reduce(call, x.dtype, op, this.peersTable(call), start, this.tables + 12 * n, 1, 0, count);
        });
        if (pending) await pending;
      } catch (e) {
        out.dispose();
        throw e;
      }
      return out;
    } finally {
      this.leave();
    }
  }

  async barrier(opts?: CollectiveOptions): Promise<void> {
    const timeoutMs = opts === undefined ? this.timeoutMs : checkTimeout("barrier", opts, this.timeoutMs);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      const call = this.start("barrier", timeoutMs, opts?.signal);
      this.post(call, KIND.barrier, undefined, 0, 0, 0, 1, 0);
      const pending = this.proceed(call, false, undefined);
      if (pending) await pending;
    } finally {
      this.leave();
    }
  }

  /** Marks this rank as done with collectives: peers still waiting for it fail at once. */
  end(): void {
    if (this.ctl.state(this.rank) === STATE.running) this.ctl.setState(this.rank, STATE.ended);
  }

  /** Records that this rank failed with `error`: every peer's pending and later collectives reject. */
  fail(error: unknown): void {
    this.ctl.recordFault(this.rank, "failed", `rank ${this.rank} failed: ${describeError(error)}`);
  }

  /**
   * One allReduce leaf. Up to smallBytes: copy into this rank's staging buffer, arrive, reduce
   * every rank's staging buffer into x. Larger: arrive, reduce this rank's slice of every rank's
   * x into that slice of every rank's x, then wait until all slices are done.
   */
  private reduceLeaf(
    x: Tensor,
    op: ReduceOp,
    leaf: number,
    leaves: number,
    tree: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> | undefined {
    const call = this.start("allReduce", timeoutMs, signal);
    const n = this.worldSize;
    const parity = call.seq & 1;
    if (x.byteLength <= this.ctl.smallBytes && this.ctl.smallBytes > 0) {
      const ptr = x.ptr;
      this.copyBytes(this.u32[parity * n + this.rank], ptr, x.byteLength);
      this.post(call, KIND.allReduce, x, OP_CODE[op], 0, leaf, leaves, tree);
      return this.proceed(call, false, () => {
        this.u32[3 * n] = ptr;
        const kernel = this.kernels[REDUCE_KERNEL[op][x.dtype]!];
        kernel(this.tables + 4 * parity * n, n, 0, this.tables + 12 * n, 1, 0, x.size, this.scratch);
      });
    }
    this.post(call, KIND.allReduce, x, OP_CODE[op], 0, leaf, leaves, tree);
    return this.proceed(call, true, () => {
      const chunk = Math.ceil(x.size / n / SLICE_ALIGN) * SLICE_ALIGN;
      const lo = Math.min(x.size, this.rank * chunk);
      const peers = this.peersTable(call);
      this.reduce(call, x.dtype, op, peers, lo, peers, n, lo, Math.min(x.size, lo + chunk) - lo);
    });
  }

  /** Whether allReduce of these leaves runs as one fused call: two or more of one dtype, on the in-place path. */
  private fusable(leaves: readonly Tensor[]): boolean {
    if (leaves.length < 2) return false;
    let bytes = 0;
    for (const t of leaves) {
      if (t.dtype !== leaves[0].dtype) return false;
      bytes += t.byteLength;
    }
    return bytes > this.ctl.smallBytes;
  }

  /**
   * allReduce of several leaves of one dtype as one call: this rank posts a table of its leaves'
   * addresses and sizes, and after one arrival reduces its slice of the leaves taken end to end
   * (read in every rank's leaves in place, through their tables) into that slice of every rank's
   * leaves, then waits until all slices are done. Each element is still combined in rank order
   * by the same kernel, so the bits are those of one call per leaf, with two barriers in all.
   * The descriptor's tree word also hashes the leaf sizes, and every peer's table is checked
   * against this rank's before any of it is read.
   */
  private reduceLeaves(
    leaves: readonly Tensor[],
    op: ReduceOp,
    tree: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> | undefined {
    const call = this.start("allReduce", timeoutMs, signal);
    const k = leaves.length;
    if (this.leafTableWords < 2 * k) {
      // only reallocated between calls: peers read it between this rank's arrival and their done
      const { arena } = runtime();
      if (this.leafTable !== 0) arena.free(this.leafTable);
      this.leafTableWords = Math.max(2 * k, 64);
      this.leafTable = arena.alloc(4 * this.leafTableWords);
    }
    const u32 = this.words();
    let total = 0;
    let sizes = tree;
    for (let j = 0; j < k; j++) {
      const t = leaves[j];
      u32[(this.leafTable >>> 2) + 2 * j] = t.ptr;
      u32[(this.leafTable >>> 2) + 2 * j + 1] = t.size;
      total += t.size;
      sizes = Math.imul(sizes ^ t.size, 0x01000193);
    }
    const x = leaves[0];
    this.post(call, KIND.allReduce, x, OP_CODE[op], 0, 0, k, sizes | 0 || 1, total, this.leafTable);
    return this.proceed(call, true, () => {
      this.matchTables(call, k);
      const n = this.worldSize;
      const chunk = Math.ceil(total / n / SLICE_ALIGN) * SLICE_ALIGN;
      const lo = Math.min(total, this.rank * chunk);
      const hi = Math.min(total, lo + chunk);
      const peers = this.tables + 4 * 2 * n;
      const u32 = this.words();
      for (let j = 0, off = 0; j < k && off < hi; off += leaves[j].size, j++) {
        const a = Math.max(lo, off);
        const b = Math.min(hi, off + leaves[j].size);
        if (a >= b) continue;
        for (let s = 0; s < n; s++) this.u32[2 * n + s] = u32[(this.posted(call, s) >>> 2) + 2 * j];
        this.reduce(call, x.dtype, op, peers, a - off, peers, n, a - off, b - a);
      }
    });
  }

  /** A u32 view of the whole memory (made again when the memory has grown). */
  private words(): Uint32Array {
    const buffer = this.memory.buffer;
    if (this.mem32.byteLength !== buffer.byteLength) this.mem32 = new Uint32Array(buffer);
    return this.mem32;
  }

  /** Checks that every rank's leaf table lists the same sizes as this rank's (a fused call). */
  private matchTables(call: Call, k: number): void {
    const u32 = this.words();
    const mine = this.leafTable >>> 2;
    for (let s = 0; s < this.worldSize; s++) {
      const theirs = this.posted(call, s) >>> 2;
      for (let j = 0; j < k; j++) if (u32[theirs + 2 * j + 1] !== u32[mine + 2 * j + 1]) this.mismatch(call);
    }
  }

  /**
   * Runs the rest of a posted call: waits for every rank to arrive, checks that they all posted
   * the same call, runs `work`, and (when `twoPhase`) publishes that this rank is done with its
   * peers' buffers and waits until every rank is. Synchronous (undefined) when no wait had to
   * sleep; a failure anywhere abandons the call (see abandon) and rejects.
   */
  private proceed(call: Call, twoPhase: boolean, work: (() => void) | undefined): Promise<void> | undefined {
    try {
      if (!this.rv.wait(R.arrive, call)) return this.proceedAsleep(call, twoPhase, work);
      this.match(call);
      work?.();
      if (!twoPhase) return undefined;
      this.markDone(call);
      if (this.rv.wait(R.done, call)) return undefined;
      return this.rv.sleep(R.done, call).catch((e) => this.abandon(call, e));
    } catch (e) {
      return this.abandon(call, e);
    }
  }

  private async proceedAsleep(call: Call, twoPhase: boolean, work: (() => void) | undefined): Promise<void> {
    try {
      await this.rv.sleep(R.arrive, call);
      this.match(call);
      work?.();
      if (!twoPhase) return;
      this.markDone(call);
      if (!this.rv.wait(R.done, call)) await this.rv.sleep(R.done, call);
    } catch (e) {
      await this.abandon(call, e);
    }
  }

  /** Waits for the running call to finish (calls on one communicator run one at a time). */
  private turn(): Promise<void> {
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private leave(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.busy = false;
  }

  /** Opens call number seq+1, or throws when the world already failed or the signal fired. */
  private start(name: string, timeoutMs: number, signal: AbortSignal | undefined): Call {
    if (Atomics.load(this.ctl.i32, H.fault) !== 0) throw this.rv.faultError(name);
    if (signal?.aborted) {
      throw new CommError(`plait: ${name}: aborted: ${describeError(signal.reason)}`, "aborted", this.rank, {
        cause: signal.reason,
      });
    }
    return { name, seq: ++this.seq, timeoutMs, deadline: 0, signal };
  }

  /** Publishes this rank's descriptor for the call, then its arrival. */
  private post(
    call: Call,
    kind: number,
    x: Tensor | undefined,
    op: number,
    root: number,
    leaf: number,
    leaves: number,
    tree: number,
    count = x ? x.size : 0,
    ptr = x ? x.ptr : 0,
  ): void {
    const { i32 } = this.ctl;
    const at = this.ctl.desc(this.rank, call.seq & 1, 0);
    i32[at + D.seq] = call.seq;
    i32[at + D.kind] = kind;
    i32[at + D.dtype] = x ? DTYPE_CODE[x.dtype] : -1;
    i32[at + D.op] = op;
    i32[at + D.count] = count;
    i32[at + D.ptr] = ptr;
    i32[at + D.root] = root;
    i32[at + D.leaf] = leaf;
    i32[at + D.leaves] = leaves;
    i32[at + D.tree] = tree;
    Atomics.store(i32, this.ctl.at(this.rank, R.arrive), call.seq);
    this.ctl.ring();
  }

  /** Checks that every rank posted the same call as this one (after all have arrived). */
  private match(call: Call): void {
    const { i32 } = this.ctl;
    const parity = call.seq & 1;
    const mine = this.ctl.desc(this.rank, parity, 0);
    for (let s = 0; s < this.worldSize; s++) {
      const theirs = this.ctl.desc(s, parity, 0);
      for (let f = 0; f < MATCHED.length; f++) {
        if (i32[theirs + MATCHED[f]] !== i32[mine + MATCHED[f]]) this.mismatch(call);
      }
    }
  }

  /** The buffer address rank `s` posted for the call. */
  private posted(call: Call, s: number): number {
    return this.ctl.i32[this.ctl.desc(s, call.seq & 1, D.ptr)] >>> 0;
  }

  /** Publishes that this rank is done with its peers' buffers for the call. */
  private markDone(call: Call): void {
    Atomics.store(this.ctl.i32, this.ctl.at(this.rank, R.done), call.seq);
    this.ctl.ring();
  }

  /**
   * After a failure inside a posted call: make sure the world knows (a kernel error is recorded
   * as this rank's fault), wait until no peer still touches this rank's buffers, and rethrow.
   */
  private async abandon(call: Call, e: unknown): Promise<never> {
    const { i32 } = this.ctl;
    if (Atomics.load(i32, H.fault) === 0) {
      this.ctl.recordFault(
        this.rank,
        "failed",
        `rank ${this.rank} failed in ${call.name} (call #${call.seq}): ${describeError(e)}`,
      );
    }
    Atomics.store(i32, this.ctl.at(this.rank, R.busy), 0);
    this.ctl.ring();
    await this.rv.drain(call.seq);
    throw e instanceof CommError ? e : this.rv.faultError(call.name);
  }

  private mismatch(call: Call): never {
    const parity = call.seq & 1;
    const calls = Array.from({ length: this.worldSize }, (_, s) => `rank ${s} ${this.describeCall(s, parity)}`);
    const shown = calls.length > 8 ? [...calls.slice(0, 8), `… (${calls.length - 8} more)`] : calls;
    return this.rv.fail(
      call,
      "mismatch",
      `ranks called different collectives at call #${call.seq}: ${shown.join("; ")}`,
    );
  }

  private describeCall(s: number, parity: number): string {
    const { i32 } = this.ctl;
    const d = (f: number) => i32[this.ctl.desc(s, parity, f)];
    const kind = KIND_NAMES[d(D.kind)] ?? "?";
    const x = `${DTYPES[d(D.dtype)]}[${d(D.count) >>> 0}]`;
    const args =
      kind === "barrier"
        ? ""
        : kind === "broadcast"
          ? `${x}, root ${d(D.root)}`
          : kind === "allGather"
            ? x
            : `${x}, "${REDUCE_OPS[d(D.op)]}"`;
    const leaf =
      d(D.leaves) > 1 || d(D.tree) !== 0
        ? ` on leaf ${d(D.leaf)} of ${d(D.leaves)} (tree #${(d(D.tree) >>> 0).toString(16)})`
        : "";
    return `${kind}(${args})${leaf}`;
  }

  /** Fills the peers table with every rank's posted buffer address; returns its address. */
  private peersTable(call: Call): number {
    const n = this.worldSize;
    for (let s = 0; s < n; s++) this.u32[2 * n + s] = this.posted(call, s);
    return this.tables + 4 * 2 * n;
  }

  /**
   * Reduces `count` elements from element `srcAt` of the buffers in table `srcs` (all ranks,
   * rank order) into element `dstAt` of the `ndst` buffers in table `dsts`: in 1 MiB calls with
   * a fault check between them, split over this rank's kernel pool when it has threads.
   */
  private reduce(
    call: Call,
    dtype: DType,
    op: ReduceOp,
    srcs: number,
    srcAt: number,
    dsts: number,
    ndst: number,
    dstAt: number,
    count: number,
  ): void {
    const size = bytesOf(dtype);
    const name = REDUCE_KERNEL[op][dtype]!;
    const kernel = this.kernels[name];
    const { pool } = runtime();
    const n = this.worldSize;
    const step = Math.max(SLICE_ALIGN, Math.floor(CHUNK_BYTES / size / SLICE_ALIGN) * SLICE_ALIGN);
    this.touch(call, true);
    for (let done = 0; done < count; done += step) {
      if (Atomics.load(this.ctl.i32, H.fault) !== 0) throw this.rv.faultError(call.name);
      const m = Math.min(step, count - done);
      const parts = Math.min(pool.size, Math.floor(m / POOL_MIN_ELEMENTS));
      if (parts <= 1) {
        kernel(srcs, n, (srcAt + done) * size, dsts, ndst, (dstAt + done) * size, m, this.scratch);
        continue;
      }
      const per = Math.ceil(m / parts / SLICE_ALIGN) * SLICE_ALIGN;
      const jobs = [];
      for (let j = 0, at = 0; at < m; j++, at += per) {
        const c = Math.min(per, m - at);
        const args = [srcs, n, (srcAt + done + at) * size, dsts, ndst, (dstAt + done + at) * size, c];
        jobs.push({ fn: `as.${name}`, args: [...args, this.scratch + j * SCRATCH_BYTES] });
      }
      pool.run(jobs);
    }
    this.touch(call, false);
  }

  /** Copies `bytes` from a peer's buffer, in 1 MiB calls with a fault check between them. */
  private copy(call: Call, dst: number, src: number, bytes: number): void {
    this.touch(call, true);
    for (let done = 0; done < bytes; done += CHUNK_BYTES) {
      if (Atomics.load(this.ctl.i32, H.fault) !== 0) throw this.rv.faultError(call.name);
      this.copyBytes(dst + done, src + done, Math.min(CHUNK_BYTES, bytes - done));
    }
    this.touch(call, false);
  }

  /** Marks whether this rank is reading or writing peers' buffers for the call (see drain). */
  private touch(call: Call, on: boolean): void {
    Atomics.store(this.ctl.i32, this.ctl.at(this.rank, R.busy), on ? call.seq : 0);
  }
}

type ReduceKernel = (...args: number[]) => void;

const DTYPE_CODE = Object.fromEntries(DTYPES.map((d, i) => [d, i])) as Record<DType, number>;
