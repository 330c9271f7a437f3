import { threadId } from "node:worker_threads";
import { readEnv } from "../../ffi/find.ts";
import { loadMpi, type MpiBinding } from "../../ffi/mpi.ts";
import { addressOf } from "../../ffi/native.ts";
import { bytesOf, DTYPES, type DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { runtime } from "../core/runtime.ts";
import { checkTensor, Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { CommError, type CommFailure, describeError } from "./errors.ts";
import { OP_CODE, REDUCE_KERNEL, SCRATCH_BYTES } from "./reduce.ts";
import { DEFAULT_TIMEOUT_MS } from "./shm.ts";
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

// The MPI communicator. Each call first exchanges a small descriptor with every peer (point to
// point, on a communicator of its own): that is where mismatched calls and ranks that never come
// are found and named, before any data moves. The data then moves on another duplicate of
// MPI_COMM_WORLD with non-blocking calls, straight from and into the tensors in plait's
// WebAssembly.Memory, polled with MPI_Testall so the event loop keeps running.
//
// allReduce: every rank sends slice j of its x to rank j (MPI_Isend/MPI_Irecv: measured here
// faster at 1-64 MiB than Open MPI's MPI_Ialltoallv + MPI_Iallgatherv); rank j reduces the
// slices in rank order with plait's own kernels (the ones ShmComm runs, so the bits are the same)
// and sends the result back to every rank. Small tensors take one MPI_Iallgather and every rank
// reduces the whole. Large ones go in pieces, so the scratch space stays bounded. reduceScatter
// is the first half over shardRange's shards; allGather is MPI_Iallgather, broadcast MPI_Ibcast,
// and barrier the descriptor exchange itself.

const KIND = { allReduce: 1, broadcast: 2, allGather: 3, reduceScatter: 4, barrier: 5 } as const;
const KIND_NAMES = ["?", "allReduce", "broadcast", "allGather", "reduceScatter", "barrier"];
/** Descriptor words: every one must agree on every rank. */
const D = { seq: 0, kind: 1, dtype: 2, op: 3, count: 4, root: 5, leaves: 6, tree: 7 } as const;
const DESC_WORDS = 8;
const DESC_BYTES = DESC_WORDS * 4;
/** A fault notice: reason code, failed rank, call number, sender, then the message in UTF-8. */
const NOTICE_BYTES = 512;
const NOTICE_TEXT = 16;
const DESC_TAG = 11;
const NOTICE_TAG = 12;
const DATA_TAG = 13;
const FAILURES: readonly CommFailure[] = ["failed", "exited", "ended", "timeout", "mismatch", "aborted"];
/** dtype code of a tree whose leaves have different dtypes. */
const MIXED = 99;

/** Up to this many bytes over all ranks, allReduce gathers everything and every rank reduces it. */
const SMALL_BYTES = 64 << 10;
/** Bytes of scratch one allReduce or reduceScatter piece uses (all ranks' slices of it). */
const PIECE_BYTES = 32 << 20;
/** Elements per rank's slice are a multiple of this (64-byte lines at f32), as in ShmComm. */
const SLICE_ALIGN = 16;
/** Below this many elements a reduction stays on the calling thread. */
const POOL_MIN_ELEMENTS = 1 << 15;
/** Milliseconds of MPI_Testall per event-loop turn. */
const SPIN_MS = 0.05;
const DATA_SPIN_MS = 0.5;
/** How long a wait keeps coming back at once (setImmediate) before it sleeps 1 ms per turn. */
const ARRIVE_BUSY_MS = 2;
const DATA_BUSY_MS = 100;
const MAX_INT = 2 ** 31 - 1;

const MPI_OPTIONS = ["timeoutMs"] as const;

export interface MpiCommOptions {
  /** Default timeout of every collective, in ms (10 minutes unless set). */
  timeoutMs?: number;
}

interface Call {
  readonly name: string;
  readonly seq: number;
  readonly timeoutMs: number;
  readonly deadline: number;
  readonly signal?: AbortSignal;
}

type ReduceKernel = (...args: number[]) => void;

let worldComm: MpiComm | undefined;

/**
 * Whether this process was started by an MPI launcher: Open MPI's mpirun, MPICH's Hydra, or a
 * PMI/PMIx launcher such as `srun --mpi=pmix` or jsrun. Reads the environment only.
 */
export function launchedByMpi(
  env: Record<string, string | undefined> = (globalThis as any).process?.env ?? {},
): boolean {
  return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE"].some(
    (v) => env[v] !== undefined && env[v] !== "",
  );
}

/**
 * The communicator over MPI_COMM_WORLD: one rank per process, started by mpirun, srun or jsrun.
 * Collectives have ShmComm's semantics and give ShmComm's bits (every element combined in rank
 * order by the same kernels), move tensors without copying them out of plait's memory, and keep
 * the event loop running while they wait, so `timeoutMs` and an AbortSignal work. A mismatch,
 * a timeout or an abort rejects on every rank and leaves the communicator broken (MPI cannot
 * cancel a collective): end the job with `abort()` then. Only the thread that initialised MPI may
 * use it.
 */
export class MpiComm implements Comm {
  readonly rank: number;
  readonly worldSize: number;
  /** This process's index among the ranks on its node, and how many there are. */
  readonly localRank: number;
  readonly localSize: number;
  /** The MPI library in use and the ABI plait speaks to it. */
  readonly library: { vendor: string; version?: string; path: string; abi: "openmpi" | "mpich" };
  private readonly mpi: MpiBinding;
  private readonly timeoutMs: number;
  private readonly thread = threadId;
  private readonly world: number;
  private readonly ctl: number;
  private readonly data: number;
  private readonly base: number;
  /** Arena addresses of this comm's fixed buffers. */
  private readonly at: {
    desc: number;
    noticeIn: number;
    noticeOut: number;
    reqs: number;
    noticeReq: number;
    sendReqs: number;
    ints: number;
    flag: number;
    table: number;
    scratch: number;
  };
  private readonly kernels: Record<string, ReduceKernel>;
  private seq = 0;
  private busy = false;
  private readonly queue: (() => void)[] = [];
  private broken: CommError | undefined;
  private finalized = false;
  private i32view = new Int32Array(0);

  /**
   * MPI_COMM_WORLD's communicator. The first call initialises MPI (MPI_Init_thread, funneled:
   * only this thread calls MPI); later calls return the same object. Throws a LibraryError when
   * no MPI library is found or its ABI is unknown, and an Error when MPI cannot start.
   */
  static world(opts: MpiCommOptions = {}): MpiComm {
    if (worldComm) return worldComm;
    const o = checkOptions("MpiComm.world()", opts, MPI_OPTIONS);
    const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs("MpiComm.world()", o.timeoutMs);
    const mpi = loadMpi();
    if (mpi.flag("MPI_Finalized")) {
      throw new Error("plait: MpiComm.world(): MPI was finalized in this process already; it cannot start again");
    }
    if (mpi.flag("MPI_Initialized")) {
      if (!mpi.flag("MPI_Is_thread_main")) {
        throw new Error(
          `plait: MpiComm.world(): MPI was initialised by another thread of this process, and only that thread may call MPI (this is thread ${threadId}); use MpiComm on that thread and hand work to other threads with spawn()/ShmComm`,
        );
      }
    } else {
      const provided = [0];
      mpi.check(mpi.fn.MPI_Init_thread(0, 0, mpi.abi.threadFunneled, provided), "MPI_Init_thread");
    }
    worldComm = new MpiComm(mpi, timeoutMs);
    return worldComm;
  }

  private constructor(mpi: MpiBinding, timeoutMs: number) {
    this.mpi = mpi;
    this.timeoutMs = timeoutMs;
    const { abi, fn, check } = mpi;
    this.world = abi.commWorld;
    check(fn.MPI_Comm_set_errhandler(this.world, abi.errorsReturn), "MPI_Comm_set_errhandler");
    const out = [0];
    check(fn.MPI_Comm_rank(this.world, out), "MPI_Comm_rank");
    this.rank = out[0];
    check(fn.MPI_Comm_size(this.world, out), "MPI_Comm_size");
    this.worldSize = out[0];
    const launched = Number(readEnv("OMPI_COMM_WORLD_SIZE") ?? readEnv("PMI_SIZE") ?? this.worldSize);
    if (launched !== this.worldSize) {
      throw new Error(
        `plait: MpiComm.world(): the launcher started ${launched} processes, but ${mpi.path} (${mpi.vendor}) sees a world of ${this.worldSize}: it is not the MPI the launcher belongs to; set PLAIT_MPI to that MPI's library`,
      );
    }
    const handle = [0];
    check(fn.MPI_Comm_dup(this.world, handle), "MPI_Comm_dup");
    this.ctl = Number(handle[0]);
    check(fn.MPI_Comm_dup(this.world, handle), "MPI_Comm_dup");
    this.data = Number(handle[0]);
    check(
      fn.MPI_Comm_split_type(this.world, abi.commTypeShared, this.rank, abi.infoNull, handle),
      "MPI_Comm_split_type",
    );
    const node = Number(handle[0]);
    check(fn.MPI_Comm_rank(node, out), "MPI_Comm_rank");
    this.localRank = out[0];
    check(fn.MPI_Comm_size(node, out), "MPI_Comm_size");
    this.localSize = out[0];
    this.library = { vendor: mpi.vendor, version: mpi.version, path: mpi.path, abi: abi.kind };

    const { arena, pool, k, memory } = runtime();
    const n = this.worldSize;
    const rq = abi.requestBytes;
    const sizes = {
      desc: n * DESC_BYTES,
      noticeIn: NOTICE_BYTES,
      noticeOut: NOTICE_BYTES,
      reqs: 2 * n * rq,
      noticeReq: rq,
      sendReqs: n * rq,
      ints: 4 * n * 4,
      flag: 4,
      table: 4 * (n + 1),
      scratch: SCRATCH_BYTES * pool.size,
    };
    const at = {} as Record<keyof typeof sizes, number>;
    for (const [name, bytes] of Object.entries(sizes)) at[name as keyof typeof sizes] = arena.alloc(bytes);
    this.at = at;
    this.base = Number(addressOf(new Uint8Array(memory.buffer)));
    this.kernels = Object.fromEntries(Object.entries(k.as).filter(([name]) => name.startsWith("coll_"))) as Record<
      string,
      ReduceKernel
    >;
    // One receive for a peer's fault notice stays posted for the communicator's life.
    if (n > 1) {
      check(
        fn.MPI_Irecv(
          this.addr(at.noticeIn),
          NOTICE_BYTES,
          abi.byte,
          abi.anySource,
          NOTICE_TAG,
          this.ctl,
          this.addr(at.noticeReq),
        ),
        "MPI_Irecv",
      );
    }
  }

  async allReduce<T extends Tree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    checkOp("allReduce", op);
    const timeoutMs = opts === undefined ? this.timeoutMs : checkTimeout("allReduce", opts, this.timeoutMs);
    const { leaves, key } = flattenForComm("allReduce", x);
    if (x instanceof Tensor) checkReducible("allReduce", leaves[0], op);
    else for (const [i, leaf] of leaves.entries()) checkReducible("allReduce", leaf, op, `x leaf ${i}`);
    checkBytes("allReduce", leaves);
    await this.run("allReduce", timeoutMs, opts?.signal, async (call) => {
      await this.arrive(call, describe(KIND.allReduce, key, leaves, OP_CODE[op], 0));
      for (const leaf of leaves) await this.reduceLeaf(call, leaf, op);
    });
    return x;
  }

  async broadcast<T extends Tree>(x: T, root: number, opts?: CollectiveOptions): Promise<T> {
    const timeoutMs = checkTimeout("broadcast", opts, this.timeoutMs);
    const { leaves, key } = flattenForComm("broadcast", x);
    checkRoot("broadcast", root, this.worldSize);
    checkBytes("broadcast", leaves);
    await this.run("broadcast", timeoutMs, opts?.signal, async (call) => {
      await this.arrive(call, describe(KIND.broadcast, key, leaves, 0, root));
      const { fn, abi } = this.mpi;
      for (const t of leaves) {
        if (t.byteLength === 0) continue;
        this.mpiCall(
          call,
          "MPI_Ibcast",
          fn.MPI_Ibcast(this.addr(t.ptr), t.byteLength, abi.byte, root, this.data, this.req(0)),
        );
        await this.wait(call, 1, "data");
      }
    });
    return x;
  }

  async allGather(x: Tensor, opts?: CollectiveOptions): Promise<Tensor> {
    const timeoutMs = checkTimeout("allGather", opts, this.timeoutMs);
    checkTensor("allGather", "x", x);
    checkBytes("allGather", [x]);
    let out: Tensor | undefined;
    await this.run("allGather", timeoutMs, opts?.signal, async (call) => {
      await this.arrive(call, describe(KIND.allGather, "", [x], 0, 0));
      out = new Tensor([this.worldSize * x.size], x.dtype);
      if (x.byteLength === 0) return;
      const { fn, abi } = this.mpi;
      const bytes = x.byteLength;
      this.mpiCall(
        call,
        "MPI_Iallgather",
        fn.MPI_Iallgather(
          this.addr(x.ptr),
          bytes,
          abi.byte,
          this.addr(out.ptr),
          bytes,
          abi.byte,
          this.data,
          this.req(0),
        ),
      );
      // out is not freed on failure: MPI may still write into it
      await this.wait(call, 1, "data");
    });
    return out!;
  }

  async reduceScatter(x: Tensor, op: ReduceOp, opts?: CollectiveOptions): Promise<Tensor> {
    checkOp("reduceScatter", op);
    const timeoutMs = checkTimeout("reduceScatter", opts, this.timeoutMs);
    checkReducible("reduceScatter", checkTensor("reduceScatter", "x", x), op);
    checkBytes("reduceScatter", [x]);
    let out: Tensor | undefined;
    await this.run("reduceScatter", timeoutMs, opts?.signal, async (call) => {
      await this.arrive(call, describe(KIND.reduceScatter, "", [x], OP_CODE[op], 0));
      const n = this.worldSize;
      const shards = Array.from({ length: n }, (_, s) => shardRange(x.size, n, s));
      out = new Tensor([shards[this.rank].count], x.dtype);
      await this.reduceSlices(call, x, op, shards, out.ptr, false);
    });
    return out!;
  }

  async barrier(opts?: CollectiveOptions): Promise<void> {
    const timeoutMs = opts === undefined ? this.timeoutMs : checkTimeout("barrier", opts, this.timeoutMs);
    // every rank's descriptor reaching every rank is itself the barrier
    await this.run("barrier", timeoutMs, opts?.signal, (call) =>
      this.arrive(call, describe(KIND.barrier, "", [], 0, 0)),
    );
  }

  /** MPI_Abort on MPI_COMM_WORLD: ends every process of the job with exit code `code`. */
  abort(code: number): never {
    if (!Number.isInteger(code)) {
      throw new TypeError(`plait: MpiComm.abort(): argument code must be an integer exit code, got ${String(code)}`);
    }
    if (!this.finalized) this.mpi.fn.MPI_Abort(this.world, code);
    process.exit(code); // MPI_Abort returned (it should not), or MPI is finalized already
  }

  /**
   * MPI_Finalize, once (later calls do nothing); collectives called after it reject. Call it when
   * no collective is running; after a failure end the job with `abort()` instead.
   */
  finalize(): void {
    if (this.finalized) return;
    this.checkThread("finalize");
    if (this.busy) {
      throw new Error("plait: MpiComm.finalize(): a collective is still running; await it before finalize()");
    }
    const { fn, check } = this.mpi;
    if (this.worldSize > 1) {
      // the notice receive that never came is cancelled first, so MPI has nothing pending of ours
      const req = this.addr(this.at.noticeReq);
      if (!this.testOne(req)) {
        fn.MPI_Cancel(req);
        for (let i = 0; i < 1000 && !this.testOne(req); i++);
      }
    }
    this.finalized = true;
    check(fn.MPI_Finalize(), "MPI_Finalize");
  }

  // ---- calls, queue and faults ----

  /** Runs `body` as call number seq+1 once the calls before it are done; any failure breaks the comm. */
  private async run(
    name: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    body: (call: Call) => Promise<void>,
  ): Promise<void> {
    this.checkThread(name);
    if (this.busy) await this.turn();
    this.busy = true;
    try {
      this.usable(name);
      if (signal?.aborted) {
        throw new CommError(`plait: ${name}: aborted: ${describeError(signal.reason)}`, "aborted", this.rank, {
          cause: signal.reason,
        });
      }
      const call: Call = { name, seq: ++this.seq, timeoutMs, deadline: performance.now() + timeoutMs, signal };
      try {
        await body(call);
      } catch (e) {
        throw this.breakWith(call, e);
      }
    } finally {
      this.leave();
    }
  }

  private turn(): Promise<void> {
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private leave(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.busy = false;
  }

  private checkThread(name: string): void {
    if (threadId !== this.thread) {
      throw new Error(
        `plait: ${name}: MpiComm belongs to thread ${this.thread}, which initialised MPI; called from thread ${threadId}`,
      );
    }
  }

  /** Throws when the comm is finalized or broken (here or, as a peer's notice says, elsewhere). */
  private usable(name: string): void {
    if (this.finalized) {
      throw new Error(`plait: ${name}: MpiComm was finalized (finalize() was called); no collective can run after it`);
    }
    this.readNotice();
    if (this.broken) throw this.brokenError(name, "the communicator is broken: ");
  }

  /** The error a call rejects with once the comm is broken. */
  private brokenError(name: string, lead = ""): CommError {
    const b = this.broken!;
    return new CommError(`plait: ${name}: ${lead}${b.message.replace(/^plait: /, "")}`, b.reason, b.failedRank, {
      cause: b,
    });
  }

  /**
   * Marks the comm broken by `e` (a CommError as it is; anything else as this rank's failure) and
   * tells every peer, unless it is a peer's notice or a mismatch every rank saw by itself.
   */
  private breakWith(call: Call, e: unknown): CommError {
    if (this.broken) return e instanceof CommError ? e : this.brokenError(call.name);
    const err =
      e instanceof CommError
        ? e
        : new CommError(
            `plait: ${call.name}: rank ${this.rank} failed in call #${call.seq}: ${describeError(e)}`,
            "failed",
            this.rank,
            {
              cause: e,
            },
          );
    this.broken = err;
    if (err.reason !== "mismatch") this.notify(call, err);
    return err;
  }

  /** Sends a fault notice to every peer (not waited for: eager sends complete on their own). */
  private notify(call: Call, err: CommError): void {
    const n = this.worldSize;
    if (n === 1) return;
    const v = this.i32();
    const o = this.at.noticeOut >> 2;
    v[o] = FAILURES.indexOf(err.reason);
    v[o + 1] = err.failedRank;
    v[o + 2] = call.seq;
    v[o + 3] = this.rank;
    const text = new TextEncoder().encode(err.message.replace(/^plait: /, "").slice(0, 400));
    const bytes = Math.min(text.length, NOTICE_BYTES - NOTICE_TEXT);
    new Uint8Array(runtime().memory.buffer, this.at.noticeOut + NOTICE_TEXT, bytes).set(text.subarray(0, bytes));
    const { fn, abi } = this.mpi;
    for (let s = 0; s < n; s++) {
      if (s === this.rank) continue;
      const req = this.addr(this.at.sendReqs + s * abi.requestBytes);
      fn.MPI_Isend(this.addr(this.at.noticeOut), NOTICE_TEXT + bytes, abi.byte, s, NOTICE_TAG, this.ctl, req);
    }
  }

  /** If a peer's fault notice has come, marks the comm broken with it. */
  private readNotice(): void {
    if (this.broken || this.worldSize === 1) return;
    if (!this.testOne(this.addr(this.at.noticeReq))) return;
    const v = this.i32();
    const o = this.at.noticeIn >> 2;
    const reason = FAILURES[v[o]] ?? "failed";
    const from = v[o + 3];
    // the text is the sender's whole message; its length is where the zero padding starts
    const raw = new Uint8Array(runtime().memory.buffer, this.at.noticeIn + NOTICE_TEXT, NOTICE_BYTES - NOTICE_TEXT);
    const end = raw.indexOf(0);
    const text = new TextDecoder().decode(raw.slice(0, end < 0 ? raw.length : end));
    this.broken = new CommError(`plait: rank ${from} reported: ${text}`, reason, v[o + 1]);
  }

  // ---- descriptors ----

  /** Exchanges descriptors with every peer and checks that all ranks made the same call. */
  private async arrive(call: Call, d: number[]): Promise<void> {
    const n = this.worldSize;
    if (n === 1) return;
    const v = this.i32();
    const mine = (this.at.desc >> 2) + this.rank * DESC_WORDS;
    d[D.seq] = call.seq;
    for (let f = 0; f < DESC_WORDS; f++) v[mine + f] = d[f];
    for (let s = 0; s < n; s++)
      if (s !== this.rank) v.fill(0, (this.at.desc >> 2) + s * DESC_WORDS, (this.at.desc >> 2) + (s + 1) * DESC_WORDS);
    const { fn, abi } = this.mpi;
    let k = 0;
    for (let s = 0; s < n; s++) {
      if (s === this.rank) continue;
      this.mpiCall(
        call,
        "MPI_Irecv",
        fn.MPI_Irecv(
          this.addr(this.at.desc + s * DESC_BYTES),
          DESC_BYTES,
          abi.byte,
          s,
          DESC_TAG,
          this.ctl,
          this.req(k++),
        ),
      );
    }
    for (let s = 0; s < n; s++) {
      if (s === this.rank) continue;
      this.mpiCall(
        call,
        "MPI_Isend",
        fn.MPI_Isend(
          this.addr(this.at.desc + this.rank * DESC_BYTES),
          DESC_BYTES,
          abi.byte,
          s,
          DESC_TAG,
          this.ctl,
          this.req(k++),
        ),
      );
    }
    await this.wait(call, k, "arrive");
    const w = this.i32();
    for (let s = 0; s < n; s++) {
      const theirs = (this.at.desc >> 2) + s * DESC_WORDS;
      for (let f = 0; f < DESC_WORDS; f++) if (w[theirs + f] !== w[mine + f]) this.mismatch(call);
    }
  }

  private mismatch(call: Call): never {
    const calls = Array.from({ length: this.worldSize }, (_, s) => `rank ${s} ${this.describeCall(s, call.seq)}`);
    const shown = calls.length > 8 ? [...calls.slice(0, 8), `… (${calls.length - 8} more)`] : calls;
    // the first rank whose call differs from rank 0's is the one named
    const v = this.i32();
    const at = (s: number) => (this.at.desc >> 2) + s * DESC_WORDS;
    let culprit = 1;
    while (
      culprit < this.worldSize &&
      v.subarray(at(culprit), at(culprit) + DESC_WORDS).every((x, f) => x === v[at(0) + f])
    )
      culprit++;
    throw new CommError(
      `plait: ${call.name}: ranks called different collectives at call #${call.seq}: ${shown.join("; ")}`,
      "mismatch",
      Math.min(culprit, this.worldSize - 1),
    );
  }

  private describeCall(s: number, seq: number): string {
    const v = this.i32();
    const d = (f: number) => v[(this.at.desc >> 2) + s * DESC_WORDS + f];
    const kind = KIND_NAMES[d(D.kind)] ?? "?";
    const dtype = d(D.dtype) === MIXED ? "mixed" : (DTYPES[d(D.dtype)] ?? "?");
    const leaves = d(D.leaves);
    const x =
      leaves === 1 && d(D.tree) === 0
        ? `${dtype}[${d(D.count) >>> 0}]`
        : `tree of ${leaves} leaves, ${d(D.count) >>> 0} ${dtype} elements (#${(d(D.tree) >>> 0).toString(16)})`;
    const args =
      kind === "barrier"
        ? ""
        : kind === "broadcast"
          ? `${x}, root ${d(D.root)}`
          : kind === "allGather"
            ? x
            : `${x}, "${REDUCE_OPS[d(D.op)]}"`;
    return d(D.seq) === seq ? `${kind}(${args})` : `${kind}(${args}) as its call #${d(D.seq)}`;
  }

  // ---- data ----

  /** One allReduce leaf: small ones gathered whole, larger ones by slices (see reduceSlices). */
  private async reduceLeaf(call: Call, x: Tensor, op: ReduceOp): Promise<void> {
    const n = this.worldSize;
    if (x.size === 0) return;
    if (n === 1) {
      // a world of one still runs the kernel: avg divides by 1, exactly as ShmComm does
      this.reduce(x.dtype, op, [x.ptr], x.ptr, x.size);
      return;
    }
    if (x.byteLength * n <= SMALL_BYTES) {
      const { arena } = runtime();
      const { fn, abi } = this.mpi;
      const bytes = x.byteLength;
      const scratch = arena.alloc(n * bytes);
      this.mpiCall(
        call,
        "MPI_Iallgather",
        fn.MPI_Iallgather(
          this.addr(x.ptr),
          bytes,
          abi.byte,
          this.addr(scratch),
          bytes,
          abi.byte,
          this.data,
          this.req(0),
        ),
      );
      await this.wait(call, 1, "data"); // scratch is kept on failure: MPI may still write it
      this.reduce(
        x.dtype,
        op,
        Array.from({ length: n }, (_, s) => scratch + s * bytes),
        x.ptr,
        x.size,
      );
      arena.free(scratch);
      return;
    }
    const chunk = Math.ceil(x.size / n / SLICE_ALIGN) * SLICE_ALIGN;
    const slices = Array.from({ length: n }, (_, s) => {
      const start = Math.min(x.size, s * chunk);
      return { start, count: Math.min(x.size, start + chunk) - start };
    });
    await this.reduceSlices(call, x, op, slices, x.ptr + slices[this.rank].start * bytesOf(x.dtype), true);
  }

  /**
   * Rank s reduces slice s of every rank's x (peers' slices received into scratch, then the kernel in rank
   * order) into `dst`; with `gather`, the reduced slices then go to every rank's x in place
   * (sent to every peer). In pieces of at most PIECE_BYTES of scratch.
   */
  private async reduceSlices(
    call: Call,
    x: Tensor,
    op: ReduceOp,
    slices: { start: number; count: number }[],
    dst: number,
    gather: boolean,
  ): Promise<void> {
    const n = this.worldSize;
    const size = bytesOf(x.dtype);
    const longest = Math.max(...slices.map((s) => s.count));
    if (longest === 0) return;
    if (n === 1) {
      this.reduce(x.dtype, op, [x.ptr], dst, x.size);
      return;
    }
    const step = Math.max(SLICE_ALIGN, Math.floor(PIECE_BYTES / n / size / SLICE_ALIGN) * SLICE_ALIGN);
    const per = Math.min(step, longest);
    const { arena } = runtime();
    const scratch = arena.alloc(n * per * size);
    const me = this.rank;
    for (let done = 0; done < longest; done += per) {
      const part = (s: number) => Math.max(0, Math.min(per, slices[s].count - done));
      const from = (s: number) => x.ptr + (slices[s].start + done) * size;
      const m = part(me);
      // slice `me` of every peer's x into scratch; this rank's own is read in place
      let k = 0;
      for (let s = 0; s < n; s++) {
        if (s === me) continue;
        if (m > 0) k = this.post(call, "MPI_Irecv", scratch + s * m * size, m * size, s, k);
        if (part(s) > 0) k = this.post(call, "MPI_Isend", from(s), part(s) * size, s, k);
      }
      await this.wait(call, k, "data");
      if (m > 0) {
        const srcs = Array.from({ length: n }, (_, s) => (s === me ? from(me) : scratch + s * m * size));
        this.reduce(x.dtype, op, srcs, dst + done * size, m);
      }
      if (!gather) continue;
      // every rank's reduced slice into every other rank's x
      k = 0;
      for (let s = 0; s < n; s++) {
        if (s === me) continue;
        if (part(s) > 0) k = this.post(call, "MPI_Irecv", from(s), part(s) * size, s, k);
        if (m > 0) k = this.post(call, "MPI_Isend", from(me), m * size, s, k);
      }
      await this.wait(call, k, "data");
    }
    arena.free(scratch);
  }

  /** Posts one MPI_Isend or MPI_Irecv of `bytes` at `ptr` with peer `s` into request slot k; returns k + 1. */
  private post(call: Call, what: "MPI_Isend" | "MPI_Irecv", ptr: number, bytes: number, s: number, k: number): number {
    const { fn, abi } = this.mpi;
    this.mpiCall(call, what, fn[what](this.addr(ptr), bytes, abi.byte, s, DATA_TAG, this.data, this.req(k)));
    return k + 1;
  }

  /**
   * dst[i] = srcs[0][i] ⊕ srcs[1][i] ⊕ … in rank order, for `count` elements: the coll kernel
   * ShmComm runs, split over this process's kernel pool when it has threads and the work is large.
   */
  private reduce(dtype: DType, op: ReduceOp, srcs: number[], dst: number, count: number): void {
    const { pool } = runtime();
    const n = srcs.length;
    const table = this.at.table;
    const u32 = new Uint32Array(runtime().memory.buffer, table, n + 1);
    srcs.forEach((p, s) => {
      u32[s] = p;
    });
    u32[n] = dst;
    const name = REDUCE_KERNEL[op][dtype]!;
    const size = bytesOf(dtype);
    const parts = Math.min(pool.size, Math.floor(count / POOL_MIN_ELEMENTS));
    if (parts <= 1) {
      this.kernels[name](table, n, 0, table + 4 * n, 1, 0, count, this.at.scratch);
      return;
    }
    const each = Math.ceil(count / parts / SLICE_ALIGN) * SLICE_ALIGN;
    const jobs = [];
    for (let j = 0, at = 0; at < count; j++, at += each) {
      const c = Math.min(each, count - at);
      jobs.push({
        fn: `as.${name}`,
        args: [table, n, at * size, table + 4 * n, 1, at * size, c, this.at.scratch + j * SCRATCH_BYTES],
      });
    }
    pool.run(jobs);
  }

  // ---- waiting ----

  /**
   * Waits until requests 0..count-1 complete: MPI_Testall in a short spin, then back to the event
   * loop (at once for a while, then every 1 ms), checking peers' notices, the signal and the
   * deadline on every turn.
   */
  private async wait(call: Call, count: number, phase: "arrive" | "data"): Promise<void> {
    const reqs = this.req(0);
    if (this.testAll(reqs, count)) return;
    const started = performance.now();
    const spin = phase === "data" ? DATA_SPIN_MS : SPIN_MS;
    const busy = phase === "data" ? DATA_BUSY_MS : ARRIVE_BUSY_MS;
    for (;;) {
      const until = performance.now() + spin;
      do {
        if (this.testAll(reqs, count)) return;
      } while (performance.now() < until);
      this.readNotice();
      if (this.broken) throw this.brokenError(call.name);
      if (call.signal?.aborted) {
        throw new CommError(
          `plait: ${call.name}: rank ${this.rank} aborted ${what(call)}: ${describeError(call.signal.reason)}`,
          "aborted",
          this.rank,
          { cause: call.signal.reason },
        );
      }
      const now = performance.now();
      if (now >= call.deadline) throw phase === "arrive" ? this.arrivalTimeout(call, count) : this.dataTimeout(call);
      await (now - started < busy ? immediate() : sleep(Math.min(1, call.deadline - now)));
    }
  }

  /** The ranks whose descriptors never came; their receives are cancelled. */
  private arrivalTimeout(call: Call, count: number): CommError {
    const missing: number[] = [];
    const { fn, abi } = this.mpi;
    let k = 0;
    for (let s = 0; s < this.worldSize; s++) {
      if (s === this.rank) continue;
      const req = this.addr(this.at.reqs + k++ * abi.requestBytes);
      if (this.testOne(req)) continue;
      missing.push(s);
      fn.MPI_Cancel(req);
      for (let i = 0; i < 100 && !this.testOne(req); i++);
    }
    void count;
    const verb = missing.length === 1 ? "rank" : "ranks";
    return new CommError(
      `plait: ${call.name}: ${verb} ${missing.join(", ")} did not arrive in ${what(call)}: rank ${this.rank} timed out after ${call.timeoutMs} ms`,
      "timeout",
      missing[0] ?? -1,
    );
  }

  private dataTimeout(call: Call): CommError {
    return new CommError(
      `plait: ${call.name}: every rank arrived in ${what(call)}, but its data did not finish moving: rank ${this.rank} timed out after ${call.timeoutMs} ms (a rank stopped while MPI moved the data)`,
      "timeout",
      -1,
    );
  }

  // ---- MPI plumbing ----

  /** A fresh Int32Array over the whole memory when it has grown. */
  private i32(): Int32Array {
    const buffer = runtime().memory.buffer;
    if (this.i32view.byteLength !== buffer.byteLength) this.i32view = new Int32Array(buffer);
    return this.i32view;
  }

  /** The process address of a byte offset in plait's memory. */
  private addr(ptr: number): number {
    return this.base + ptr;
  }

  /** The process address of request slot i. */
  private req(i: number): number {
    return this.addr(this.at.reqs + i * this.mpi.abi.requestBytes);
  }

  private mpiCall(call: Call, what: string, rc: number): void {
    if (rc !== 0) this.mpi.check(rc, `${call.name}: ${what}`);
  }

  private testAll(reqs: number, count: number): boolean {
    const flag = this.at.flag;
    const rc = this.mpi.fn.MPI_Testall(count, reqs, this.addr(flag), this.mpi.abi.statusIgnore);
    if (rc !== 0) this.mpi.check(rc, "MPI_Testall");
    return this.i32()[flag >> 2] !== 0;
  }

  private testOne(req: number): boolean {
    const flag = this.at.flag;
    const rc = this.mpi.fn.MPI_Test(req, this.addr(flag), this.mpi.abi.statusIgnore);
    if (rc !== 0) this.mpi.check(rc, "MPI_Test");
    return this.i32()[flag >> 2] !== 0;
  }
}

const what = (call: Call) => `${call.name} (call #${call.seq})`;

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** MPI counts are ints: a leaf of 2 GiB or more is refused by name. */
function checkBytes(name: string, leaves: Tensor[]): void {
  for (const [i, t] of leaves.entries()) {
    if (t.byteLength > MAX_INT) {
      throw new RangeError(
        `plait: ${name}: argument ${leaves.length > 1 ? `x leaf ${i}` : "x"} (${t.describe()}) is ${t.byteLength} bytes; MpiComm moves at most ${MAX_INT} bytes per tensor`,
      );
    }
  }
}

/**
 * A call's descriptor: kind, dtype, op, element count, root, leaf count, and a hash of the tree
 * (its structure key, "" for a lone Tensor, with the leaves' dtypes and sizes; 0 without a tree).
 */
function describe(kind: number, key: string, leaves: Tensor[], op: number, root: number): number[] {
  const dtypes = new Set(leaves.map((t) => t.dtype));
  const dtype = dtypes.size === 1 ? DTYPES.indexOf(leaves[0].dtype) : dtypes.size === 0 ? -1 : MIXED;
  const count = leaves.reduce((s, t) => s + t.size, 0) | 0;
  const tree = key === "" ? 0 : hashKey(`${key}|${leaves.map((t) => `${t.dtype}${t.size}`).join(",")}`);
  return [0, kind, dtype, op, count, root, leaves.length, tree];
}
