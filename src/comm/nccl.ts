import { threadId } from "node:worker_threads";
import { deviceStream } from "../../ffi/cuda/backend.ts";
import {
  deviceCount,
  eventCreate,
  eventDestroy,
  eventDone,
  eventRecord,
  free,
  malloc,
  memcpyDtoD,
  memsetAsync,
  setDevice,
} from "../../ffi/cuda/runtime.ts";
import {
  loadNccl,
  NCCL_DTYPE,
  NCCL_OP,
  NCCL_UNIQUE_ID_BYTES,
  type NcclBinding,
  ncclConfig,
  ncclInProgress,
  ncclSuccess,
  ncclUniqueId,
} from "../../ffi/nccl.ts";
import { type CudaTensor, toDevice } from "../core/device.ts";
import { bytesOf, type DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { Tensor, typeName } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { CommError, type CommFailure, describeError } from "./errors.ts";
import { storeFromEnv, TcpStore } from "./rendezvous.ts";
import { DEFAULT_TIMEOUT_MS } from "./shm.ts";
import { type CollectiveOptions, type Comm, type ReduceOp, shardRange } from "./types.ts";
import { checkOp, checkRoot, checkTimeout, checkTimeoutMs } from "./validate.ts";

// The NCCL communicator: one rank per GPU, collectives on CUDA device memory. The communicator
// is non-blocking (ncclConfig_t.blocking = 0), so neither init nor a collective ever holds the
// event loop: init returns at once and is polled with ncclCommGetAsyncError; a collective is
// queued on a stream, an event is recorded after it and polled with cudaEventQuery, and every
// turn also asks ncclCommGetAsyncError, checks the AbortSignal, the deadline and (with a TCP
// store) whether a peer posted a fault. Any failure calls ncclCommAbort, which stops this rank's
// kernels, and posts a notice naming this rank, so the peers stop within their own poll instead
// of waiting for their timeout. The unique id reaches the ranks over whatever already connects
// them: a Comm (ShmComm among threads, MpiComm among MPI processes) or the TCP store at
// MASTER_ADDR:MASTER_PORT (rank 0 serves it), as torchrun does.
//
// Unlike the CPU backends, NCCL chooses its own reduction order (rings and trees over the
// topology), so the bits are reproducible for a fixed topology and NCCL version, but not rank
// ordered, and not equal to ShmComm's.

/**
 * What NcclComm needs of a tensor on a CUDA device; plait's CudaTensor (src/core/device.ts) has
 * these members. Any object with them will do (a buffer from another library, in tests).
 */
export interface DeviceTensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  readonly byteLength: number;
  /** The CUDA device ordinal: N of "cuda:N". */
  readonly deviceIndex: number;
  /** The device address of the first element. */
  readonly ptr: bigint;
  readonly disposed?: boolean;
}

/** Device tensors nested in arrays and plain objects, like a Tree. */
export type DeviceTree = DeviceTensor | readonly DeviceTree[] | { readonly [key: string]: DeviceTree };

/** Makes an output tensor for allGather and reduceScatter. */
export type DeviceAllocator = (shape: readonly number[], dtype: DType, deviceIndex: number) => DeviceTensor;

const REDUCIBLE: readonly DType[] = ["f64", "f32", "f16", "bf16", "i32"];
/** Milliseconds between polls of the store for a peer's fault notice. */
const NOTICE_POLL_MS = 100;
/** How long a wait keeps coming back at once (setImmediate) before it sleeps 1 ms per turn. */
const BUSY_MS = 50;
/** The store key a failing rank sets; every rank of a communicator reads it. */
const FAULT_KEY = "plait/nccl/fault";

const INIT_OPTIONS = [
  "rank",
  "worldSize",
  "device",
  "id",
  "timeoutMs",
  "stream",
  "alloc",
  "library",
  "store",
  "closeStore",
] as const;
const BOOT_OPTIONS = [
  "rank",
  "worldSize",
  "device",
  "via",
  "timeoutMs",
  "stream",
  "alloc",
  "library",
  "key",
  "env",
] as const;

export interface NcclInitOptions {
  rank: number;
  worldSize: number;
  /** The CUDA device this rank runs on. */
  device: number;
  /** The 128-byte unique id rank 0 made (ncclUniqueId()) and every rank received. */
  id: Uint8Array;
  /** Default timeout of init and of every collective, in ms (10 minutes unless set). */
  timeoutMs?: number;
  /**
   * The stream collectives are queued on: by default plait's stream for `device`
   * (`cuda.deviceStream(device)`), where plait's device ops run, so a collective follows the ops
   * that produced its inputs with no host wait. Another stream is for tensors written elsewhere.
   */
  stream?: bigint | number;
  /** Makes outputs of allGather and reduceScatter; by default `new (x.constructor)(shape, dtype, device)`. */
  alloc?: DeviceAllocator;
  /** The NCCL library: a path or soname, "auto" or "off" (default: PLAIT_NCCL, else auto). */
  library?: string;
  /** A TCP store shared by the ranks: a failing rank posts a notice there that its peers read. */
  store?: TcpStore;
  /** Close `store` in destroy() (bootstrap sets it for the store it opened itself). */
  closeStore?: boolean;
}

export interface NcclBootstrapOptions extends Omit<NcclInitOptions, "id" | "store" | "closeStore"> {
  /**
   * How the unique id reaches every rank: a Comm that already connects them (ShmComm,
   * MpiComm, HierComm: rank 0's id is broadcast over it), a TcpStore, or "env" (the default):
   * the TCP store at MASTER_ADDR:MASTER_PORT with RANK and WORLD_SIZE, as torchrun sets them.
   */
  via?: Comm | TcpStore | "env";
  /** The store key the id is set under (default "plait/nccl/id"); one per communicator. */
  key?: string;
  /** With via "env": the variables to read (default process.env). */
  env?: Record<string, string | undefined>;
}

interface Call {
  readonly name: string;
  readonly seq: number;
  readonly timeoutMs: number;
  readonly deadline: number;
  readonly signal?: AbortSignal;
}

/**
 * Hands rank 0's unique id (made by `make`, by default ncclGetUniqueId) to every rank over `via`
 * and resolves with the 128 bytes on each. Over a Comm it is a broadcast of a u8 tensor; over a
 * TcpStore rank 0 sets `key` and the others wait for it.
 */
export async function shareUniqueId(
  via: Comm | TcpStore,
  opts: { make?: () => Uint8Array; key?: string; timeoutMs?: number } = {},
): Promise<Uint8Array> {
  const make = opts.make ?? (() => ncclUniqueId());
  const key = opts.key ?? "plait/nccl/id";
  const checked = (id: Uint8Array, from: string) => {
    if (!(id instanceof Uint8Array) || id.length !== NCCL_UNIQUE_ID_BYTES) {
      throw new Error(
        `plait: NCCL bootstrap: the unique id from ${from} has ${id?.length ?? typeName(id)} bytes, expected ${NCCL_UNIQUE_ID_BYTES}`,
      );
    }
    return id;
  };
  if (via instanceof TcpStore) {
    if (via.rank === 0) {
      const id = checked(make(), "ncclGetUniqueId");
      await via.set(key, id);
      return id;
    }
    const got = await via.get(key, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
    return checked(new Uint8Array(got), `the store key "${key}"`);
  }
  const t = new Tensor([NCCL_UNIQUE_ID_BYTES], "u8");
  try {
    if (via.rank === 0) t.data().set(checked(make(), "ncclGetUniqueId"));
    await via.broadcast(t, 0, opts.timeoutMs === undefined ? undefined : { timeoutMs: opts.timeoutMs });
    return new Uint8Array(t.data());
  } finally {
    t.dispose();
  }
}

/**
 * A communicator over NCCL for tensors on CUDA devices, one rank per device. Made with
 * `NcclComm.bootstrap()` (which shares the unique id) or `NcclComm.init()` (given the id).
 * Collectives take DeviceTensors (plait's CudaTensor), resolve once the data has moved, and keep
 * the Comm contract's shapes: allReduce and broadcast in place, allGather and reduceScatter into
 * new tensors (reduceScatter splits as shardRange does). A failure, a timeout or an abort rejects
 * with a CommError naming the rank and NCCL's error, aborts the communicator (ncclCommAbort) and
 * leaves it broken: make a new one to go on.
 */
export class NcclComm implements Comm {
  readonly rank: number;
  readonly worldSize: number;
  /** The CUDA device of this rank. */
  readonly device: number;
  /** The NCCL library in use. */
  readonly library: { path: string; version: string };
  private readonly nccl: NcclBinding;
  private readonly comm: bigint;
  private readonly stream: bigint;
  private readonly event: bigint;
  private readonly scratch: bigint;
  private readonly timeoutMs: number;
  private readonly alloc: DeviceAllocator | undefined;
  private readonly store: TcpStore | undefined;
  private readonly closeStore: boolean;
  /** The store key of this communicator's fault notice: one per unique id. */
  private readonly faultKey: string;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private broken: CommError | undefined;
  private destroyed = false;
  private nextNoticePoll = 0;
  /** The failure came from a peer's notice: not posted again. */
  private fromPeer = false;

  private constructor(
    o: NcclInitOptions,
    nccl: NcclBinding,
    comm: bigint,
    stream: bigint,
    event: bigint,
    scratch: bigint,
    timeoutMs: number,
  ) {
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.device = o.device;
    this.nccl = nccl;
    this.library = { path: nccl.path, version: nccl.version };
    this.comm = comm;
    this.stream = stream;
    this.event = event;
    this.scratch = scratch;
    this.timeoutMs = timeoutMs;
    this.alloc = o.alloc;
    this.store = o.store;
    this.closeStore = o.closeStore === true;
    this.faultKey = `${FAULT_KEY}/${Array.from(o.id.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  /**
   * Shares the unique id over `via` (a Comm, a TcpStore, or "env": MASTER_ADDR:MASTER_PORT),
   * meets the other ranks there (a store names the ranks that never came), then initialises.
   */
  static async bootstrap(opts: NcclBootstrapOptions): Promise<NcclComm> {
    const name = "NcclComm.bootstrap()";
    const o = checkOptions(name, opts, BOOT_OPTIONS);
    const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs(name, o.timeoutMs);
    const via = o.via ?? "env";
    let store: TcpStore | undefined;
    let owned = false;
    if (via === "env") {
      store = await storeFromEnv(o.env ?? (globalThis as any).process?.env ?? {}, { timeoutMs });
      owned = true;
    } else if (via instanceof TcpStore) {
      store = via;
    } else if (!(typeof via === "object" && via !== null && typeof (via as Comm).broadcast === "function")) {
      throw new TypeError(`plait: ${name}: option via must be a Comm, a TcpStore or "env", got ${typeName(via)}`);
    }
    const source = store ?? (via as Comm);
    try {
      if (source.rank !== o.rank || source.worldSize !== o.worldSize) {
        throw new RangeError(
          `plait: ${name}: options rank ${o.rank} and worldSize ${o.worldSize} disagree with option via's rank ${source.rank} of ${source.worldSize}`,
        );
      }
      const key = o.key ?? "plait/nccl/id";
      const id = await shareUniqueId(source, { key, timeoutMs, make: () => ncclUniqueId(loadNccl(o.library)) });
      if (store) await store.arrive(`${key}/init`, { timeoutMs });
      const { via: _v, key: _k, env: _e, ...rest } = o;
      return await NcclComm.init({ ...rest, id, ...(store ? { store, closeStore: owned } : {}) });
    } catch (e) {
      if (owned) await store?.close({ graceMs: 0 });
      throw e;
    }
  }

  /**
   * ncclCommInitRankConfig (non-blocking) on `device`, polled until every rank has joined.
   * Rejects, after ncclCommAbort, when NCCL reports an error or `timeoutMs` passes.
   */
  static async init(opts: NcclInitOptions): Promise<NcclComm> {
    const name = "NcclComm.init()";
    const o = checkOptions(name, opts, INIT_OPTIONS);
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) {
      throw new RangeError(
        `plait: ${name}: option worldSize must be a positive integer, got ${JSON.stringify(o.worldSize)}`,
      );
    }
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
      throw new RangeError(
        `plait: ${name}: option rank must be an integer in [0, ${o.worldSize - 1}], got ${JSON.stringify(o.rank)}`,
      );
    }
    if (!Number.isInteger(o.device) || o.device < 0) {
      throw new RangeError(
        `plait: ${name}: option device must be a CUDA device ordinal ≥ 0, got ${JSON.stringify(o.device)}`,
      );
    }
    if (!(o.id instanceof Uint8Array) || o.id.length !== NCCL_UNIQUE_ID_BYTES) {
      throw new TypeError(
        `plait: ${name}: option id must be the ${NCCL_UNIQUE_ID_BYTES}-byte Uint8Array from ncclUniqueId(), got ${o.id instanceof Uint8Array ? `${o.id.length} bytes` : typeName(o.id)}`,
      );
    }
    const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs(name, o.timeoutMs);
    const nccl = loadNccl(o.library);
    const who = `rank ${o.rank} of ${o.worldSize} (cuda:${o.device})`;
    const count = deviceCount();
    if (o.device >= count) {
      throw new RangeError(
        `plait: ${name}: option device is ${o.device}, but this machine has ${count} CUDA device(s)`,
      );
    }
    setDevice(o.device, `${name}: ${who}`);
    // plait's stream for the device by default: collectives follow the ops that made their inputs
    const stream = o.stream === undefined ? deviceStream(o.device, `${name}: ${who}`) : BigInt(o.stream);
    const event = eventCreate(false);
    const scratch = malloc(16, `${name}: ${who}`);
    const out = [0];
    const rc = nccl.fn.ncclCommInitRankConfig(out, o.worldSize, { bytes: o.id }, o.rank, ncclConfig(false));
    const handle = BigInt(out[0]);
    const release = () => {
      free(scratch);
      eventDestroy(event);
    };
    if (rc !== ncclSuccess && rc !== ncclInProgress) {
      // the message first: after ncclCommAbort the handle is freed
      const e = new CommError(
        `plait: ${name}: ${who}: ncclCommInitRankConfig failed: ${nccl.describe(rc)}${lastError(nccl, handle)}`,
        "failed",
        o.rank,
      );
      if (handle !== 0n) nccl.fn.ncclCommAbort(handle);
      release();
      throw e;
    }
    const deadline = performance.now() + timeoutMs;
    const started = performance.now();
    for (;;) {
      const state = asyncError(nccl, handle);
      if (state === ncclSuccess) break;
      if (state !== ncclInProgress || performance.now() >= deadline) {
        const e =
          state !== ncclInProgress
            ? new CommError(
                `plait: ${name}: ${who}: NCCL init failed: ${nccl.describe(state)}${lastError(nccl, handle)}`,
                "failed",
                o.rank,
              )
            : new CommError(
                `plait: ${name}: ${who}: not every rank joined within ${timeoutMs} ms (ncclCommInitRankConfig still in progress; aborted)`,
                "timeout",
                -1,
              );
        nccl.fn.ncclCommAbort(handle);
        release();
        throw e;
      }
      await (performance.now() - started < BUSY_MS ? immediate() : sleep(1));
    }
    return new NcclComm(o, nccl, handle, stream, event, scratch, timeoutMs);
  }

  async allReduce<T extends Tree | DeviceTree>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    const host = hostLeaves(x);
    if (host) return this.stagedInPlace(host, x, (dev) => this.allReduce(dev, op, opts));
    checkOp("allReduce", op);
    const timeoutMs = checkTimeout("allReduce", opts, this.timeoutMs);
    const leaves = this.leaves("allReduce", x);
    for (const [i, t] of leaves.entries()) checkReducible("allReduce", t, op, leaves.length > 1 ? `x leaf ${i}` : "x");
    await this.run("allReduce", timeoutMs, opts?.signal, () => {
      const { fn } = this.nccl;
      for (const t of leaves) {
        if (t.size === 0) continue;
        const rc = fn.ncclAllReduce(t.ptr, t.ptr, t.size, NCCL_DTYPE[t.dtype], NCCL_OP[op], this.comm, this.stream);
        this.enqueued(rc, "ncclAllReduce");
      }
    });
    return x;
  }

  async broadcast<T extends Tree | DeviceTree>(x: T, root: number, opts?: CollectiveOptions): Promise<T> {
    const host = hostLeaves(x);
    if (host) return this.stagedInPlace(host, x, (dev) => this.broadcast(dev, root, opts));
    const timeoutMs = checkTimeout("broadcast", opts, this.timeoutMs);
    const leaves = this.leaves("broadcast", x);
    checkRoot("broadcast", root, this.worldSize);
    await this.run("broadcast", timeoutMs, opts?.signal, () => {
      for (const t of leaves) {
        if (t.byteLength === 0) continue;
        // bytes, so that every dtype (u8 too) moves unchanged
        const rc = this.nccl.fn.ncclBroadcast(t.ptr, t.ptr, t.byteLength, NCCL_DTYPE.u8, root, this.comm, this.stream);
        this.enqueued(rc, "ncclBroadcast");
      }
    });
    return x;
  }

  async allGather<T extends Tensor | DeviceTensor>(x: T, opts?: CollectiveOptions): Promise<T> {
    if (x instanceof Tensor) return this.staged(x, (dev) => this.allGather(dev, opts)) as Promise<T>;
    const timeoutMs = checkTimeout("allGather", opts, this.timeoutMs);
    const [t] = this.leaves("allGather", x, true);
    const out = this.make("allGather", t, [this.worldSize * t.size]);
    try {
      await this.run("allGather", timeoutMs, opts?.signal, () => {
        if (t.byteLength === 0) return;
        const rc = this.nccl.fn.ncclAllGather(t.ptr, out.ptr, t.byteLength, NCCL_DTYPE.u8, this.comm, this.stream);
        this.enqueued(rc, "ncclAllGather");
      });
    } catch (e) {
      if (!this.broken) dispose(out); // an aborted comm may still have written it: kept then
      throw e;
    }
    return out as unknown as T;
  }

  async reduceScatter<T extends Tensor | DeviceTensor>(x: T, op: ReduceOp, opts?: CollectiveOptions): Promise<T> {
    if (x instanceof Tensor) return this.staged(x, (dev) => this.reduceScatter(dev, op, opts)) as Promise<T>;
    checkOp("reduceScatter", op);
    const timeoutMs = checkTimeout("reduceScatter", opts, this.timeoutMs);
    const [t] = this.leaves("reduceScatter", x, true);
    checkReducible("reduceScatter", t, op, "x");
    const n = this.worldSize;
    const shards = Array.from({ length: n }, (_, s) => shardRange(t.size, n, s));
    const out = this.make("reduceScatter", t, [shards[this.rank].count]);
    const each = Math.ceil(t.size / n);
    const size = bytesOf(t.dtype);
    const even = t.size % n === 0;
    // uneven sizes: every shard goes to a slot of `each` elements in a padded copy
    const padded = even || t.size === 0 ? 0n : malloc(n * each * size, this.who());
    try {
      await this.run("reduceScatter", timeoutMs, opts?.signal, () => {
        if (t.size === 0) return;
        const dt = NCCL_DTYPE[t.dtype];
        if (even) {
          this.enqueued(
            this.nccl.fn.ncclReduceScatter(t.ptr, out.ptr, each, dt, NCCL_OP[op], this.comm, this.stream),
            "ncclReduceScatter",
          );
          return;
        }
        memsetAsync(padded, 0, n * each * size, this.stream);
        for (const [s, { start, count }] of shards.entries()) {
          if (count === 0) continue;
          const dst = padded + BigInt(s * each * size);
          const src = t.ptr + BigInt(start * size);
          memcpyDtoD(dst, src, count * size, this.stream);
        }
        this.enqueued(
          this.nccl.fn.ncclReduceScatter(
            padded,
            padded + BigInt(this.rank * each * size),
            each,
            dt,
            NCCL_OP[op],
            this.comm,
            this.stream,
          ),
          "ncclReduceScatter",
        );
        const mine = shards[this.rank].count * size;
        if (mine > 0) {
          const from = padded + BigInt(this.rank * each * size);
          memcpyDtoD(out.ptr, from, mine, this.stream);
        }
      });
    } catch (e) {
      if (!this.broken) dispose(out);
      throw e;
    } finally {
      if (padded !== 0n && !this.broken) free(padded);
    }
    return out as unknown as T;
  }

  async barrier(opts?: CollectiveOptions): Promise<void> {
    const timeoutMs = checkTimeout("barrier", opts, this.timeoutMs);
    await this.run("barrier", timeoutMs, opts?.signal, () => {
      const rc = this.nccl.fn.ncclAllReduce(
        this.scratch,
        this.scratch,
        1,
        NCCL_DTYPE.i32,
        NCCL_OP.sum,
        this.comm,
        this.stream,
      );
      this.enqueued(rc, "ncclAllReduce");
    });
  }

  /**
   * Ends the communicator: ncclCommFinalize (waits, polled, for pending work) then
   * ncclCommDestroy, or ncclCommAbort when it is broken; frees what init made and closes a store
   * it owns. Later calls do nothing.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.queue.catch(() => {});
    this.destroyed = true;
    const { fn } = this.nccl;
    setDevice(this.device, this.who());
    if (this.broken) {
      // fail() has aborted it already: ncclCommAbort frees the communicator, so never twice
    } else {
      const rc = fn.ncclCommFinalize(this.comm);
      const deadline = performance.now() + this.timeoutMs;
      let state = rc === ncclSuccess || rc === ncclInProgress ? asyncError(this.nccl, this.comm) : rc;
      while (state === ncclInProgress && performance.now() < deadline) {
        await sleep(1);
        state = asyncError(this.nccl, this.comm);
      }
      if (state === ncclSuccess) fn.ncclCommDestroy(this.comm);
      else fn.ncclCommAbort(this.comm);
    }
    free(this.scratch);
    eventDestroy(this.event);
    if (this.closeStore) await this.store?.close();
  }

  /** Aborts the communicator now (ncclCommAbort): pending and later collectives reject. */
  abort(reason = "abort() was called"): void {
    this.fail(new CommError(`plait: NcclComm: ${this.who()} aborted: ${reason}`, "aborted", this.rank));
  }

  // ---- one call ----

  /** Runs one collective after the previous one, with this rank's device current. */
  private run(name: string, timeoutMs: number, signal: AbortSignal | undefined, enqueue: () => void): Promise<void> {
    const go = async () => {
      if (this.destroyed) throw new Error(`plait: ${name}: this NcclComm was destroyed`);
      if (this.broken) throw this.brokenError(name);
      const seq = ++this.seq;
      const call: Call = { name, seq, timeoutMs, deadline: performance.now() + timeoutMs, signal };
      if (signal?.aborted) throw this.aborted(call, signal);
      try {
        setDevice(this.device, this.who());
        const { fn } = this.nccl;
        this.enqueued(fn.ncclGroupStart(), "ncclGroupStart");
        try {
          enqueue();
        } finally {
          this.enqueued(fn.ncclGroupEnd(), "ncclGroupEnd");
        }
        await this.settle(call); // non-blocking: the group may still be being issued
        eventRecord(this.event, this.stream);
        await this.wait(call);
      } catch (e) {
        if (e instanceof CommError && this.broken === e) throw e;
        throw this.fail(
          e instanceof CommError
            ? e
            : new CommError(
                `plait: ${name}: ${this.who()} failed in ${what(call)}: ${describeError(e)}`,
                "failed",
                this.rank,
                {
                  cause: e,
                },
              ),
        );
      }
    };
    const p = this.queue.then(go, go);
    this.queue = p.catch(() => {});
    return p;
  }

  /** A call's return code: success and in-progress go on; anything else is this rank's failure. */
  private enqueued(rc: number, call: string): void {
    if (rc === ncclSuccess || rc === ncclInProgress) return;
    throw new CommError(
      `plait: ${call}: ${this.who()}: ${this.nccl.describe(rc)}${lastError(this.nccl, this.comm)}`,
      "failed",
      this.rank,
    );
  }

  /** Waits while the communicator reports ncclInProgress (a non-blocking group being issued). */
  private async settle(call: Call): Promise<void> {
    const started = performance.now();
    for (;;) {
      const state = asyncError(this.nccl, this.comm);
      if (state === ncclSuccess) return;
      this.checkTurn(call, state);
      await (performance.now() - started < BUSY_MS ? immediate() : sleep(1));
    }
  }

  /** Polls the event recorded after the call until it completes, checking faults every turn. */
  private async wait(call: Call): Promise<void> {
    const started = performance.now();
    for (;;) {
      if (eventDone(this.event)) return;
      this.checkTurn(call, asyncError(this.nccl, this.comm));
      await this.pollNotice();
      if (this.broken) throw this.broken;
      await (performance.now() - started < BUSY_MS ? immediate() : sleep(1));
    }
  }

  /** Throws for an NCCL async error, a fired signal or a passed deadline. */
  private checkTurn(call: Call, state: number): void {
    if (state !== ncclSuccess && state !== ncclInProgress) {
      throw new CommError(
        `plait: ${call.name}: ${this.who()}: NCCL reported ${this.nccl.describe(state)}${lastError(this.nccl, this.comm)} in ${what(call)}; the communicator was aborted`,
        "failed",
        this.rank,
      );
    }
    if (call.signal?.aborted) throw this.aborted(call, call.signal);
    if (performance.now() >= call.deadline) {
      throw new CommError(
        `plait: ${call.name}: ${this.who()} timed out after ${call.timeoutMs} ms in ${what(call)}: a peer did not take part or stopped (the communicator was aborted)`,
        "timeout",
        -1,
      );
    }
  }

  /** With a store: a peer's fault notice, at most every NOTICE_POLL_MS, marks this comm broken. */
  private async pollNotice(): Promise<void> {
    if (!this.store || this.broken) return;
    const now = performance.now();
    if (now < this.nextNoticePoll) return;
    this.nextNoticePoll = now + NOTICE_POLL_MS;
    let notice: Uint8Array | undefined;
    try {
      notice = await this.store.tryGet(this.faultKey);
    } catch {
      return; // the store is gone; NCCL's own errors and the deadline still apply
    }
    if (!notice) return;
    const text = new TextDecoder().decode(notice);
    const m = /^(\d+) (-?\d+) (\w+) ([\s\S]*)$/.exec(text);
    const from = m ? Number(m[1]) : -1;
    const failed = m ? Number(m[2]) : -1;
    const reason = (m?.[3] ?? "failed") as CommFailure;
    this.fromPeer = true;
    this.fail(new CommError(`plait: rank ${from} reported: ${m?.[4] ?? text}`, reason, failed));
  }

  /** Marks the comm broken with `e`, aborts NCCL's side, tells the peers through the store; returns e. */
  private fail(e: CommError): CommError {
    if (this.broken) return this.broken;
    this.broken = e;
    try {
      this.nccl.fn.ncclCommAbort(this.comm);
    } catch {}
    if (this.store && !this.fromPeer) {
      // sender, failed rank (-1 when unknown, as after a timeout), reason, message
      const notice = `${this.rank} ${e.failedRank} ${e.reason} ${e.message.replace(/^plait: /, "")}`;
      void this.store.set(this.faultKey, notice).catch(() => {});
    }
    return e;
  }

  private brokenError(name: string): CommError {
    const b = this.broken!;
    return new CommError(
      `plait: ${name}: this NcclComm is broken by an earlier failure (${b.message}); make a new communicator`,
      b.reason,
      b.failedRank,
      { cause: b },
    );
  }

  private aborted(call: Call, signal: AbortSignal): CommError {
    return new CommError(
      `plait: ${call.name}: ${this.who()} aborted ${what(call)}: ${describeError(signal.reason)}`,
      "aborted",
      this.rank,
      { cause: signal.reason },
    );
  }

  private who(): string {
    return `rank ${this.rank} of ${this.worldSize} (cuda:${this.device}, thread ${threadId})`;
  }

  // ---- CPU tensors: staged through device copies ----
  // The transforms exchange a few small CPU tensors beside the gradients (withAMP's skip flag,
  // the demo's mean loss, withDDP's layout check by gatherStrings, the grad-clip norm of shards):
  // the code paths they take on CPU comms. Here each is copied to this rank's device, moved by
  // NCCL, and copied back (the copy back waits for the stream: these are control messages).

  private async stagedInPlace<T>(host: Tensor[], x: T, run: (dev: CudaTensor[]) => Promise<unknown>): Promise<T> {
    const dev = host.map((t) => toDevice(t, `cuda:${this.device}`) as CudaTensor);
    try {
      await run(dev);
      for (const [i, d] of dev.entries()) {
        const back = d.to("cpu");
        host[i].data().set(back.data() as never);
        back.dispose();
      }
      return x;
    } finally {
      for (const d of dev) d.dispose();
    }
  }

  private async staged(x: Tensor, run: (dev: CudaTensor) => Promise<CudaTensor>): Promise<Tensor> {
    if (x.disposed) throw new Error(`plait: NcclComm: argument x (${x.describe()}) was used after dispose()`);
    const dev = toDevice(x, `cuda:${this.device}`) as CudaTensor;
    try {
      const out = await run(dev);
      try {
        return out.to("cpu");
      } finally {
        out.dispose();
      }
    } finally {
      dev.dispose();
    }
  }

  // ---- arguments ----

  private leaves(name: string, x: unknown, single = false): DeviceTensor[] {
    const out: DeviceTensor[] = [];
    const walk = (v: unknown, path: string) => {
      if (isDeviceTensor(v)) {
        out.push(v);
        return;
      }
      if (!single && Array.isArray(v)) {
        for (const [i, c] of v.entries()) walk(c, `${path}[${i}]`);
        return;
      }
      if (!single && v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
        for (const k of Object.keys(v).sort()) walk((v as Record<string, unknown>)[k], `${path}.${k}`);
        return;
      }
      const where =
        v instanceof Tensor
          ? `a CPU tensor (${v.describe()}): NcclComm moves CUDA device memory; use .to("cuda:${this.device}") or a CPU comm`
          : typeName(v);
      throw new TypeError(`plait: ${name}: argument ${path} must be a tensor on cuda:${this.device}, got ${where}`);
    };
    walk(x, "x");
    for (const [i, t] of out.entries()) {
      const arg = out.length > 1 ? `x leaf ${i}` : "x";
      if (t.disposed) throw new Error(`plait: ${name}: argument ${arg} was used after dispose()`);
      if (t.deviceIndex !== this.device) {
        throw new Error(
          `plait: ${name}: argument ${arg} is on cuda:${t.deviceIndex}, but rank ${this.rank}'s communicator runs on cuda:${this.device}`,
        );
      }
      if (NCCL_DTYPE[t.dtype] === undefined)
        throw new TypeError(`plait: ${name}: argument ${arg} has dtype ${t.dtype}, which NCCL has no type for`);
    }
    return out;
  }

  private make(name: string, like: DeviceTensor, shape: number[]): DeviceTensor {
    if (this.alloc) return this.alloc(shape, like.dtype, this.device);
    const Ctor = (like as { constructor?: unknown }).constructor as
      | (new (
          shape: readonly number[],
          dtype: DType,
          device: number,
        ) => DeviceTensor)
      | undefined;
    if (typeof Ctor !== "function" || (Ctor as unknown) === Object) {
      throw new TypeError(
        `plait: ${name}: argument x is a plain object, so NcclComm cannot make an output like it; pass option alloc to NcclComm.init()`,
      );
    }
    return new Ctor(shape, like.dtype, this.device);
  }
}

/** The leaves of `x` when every one is a CPU Tensor (at least one), else undefined. */
function hostLeaves(x: unknown): Tensor[] | undefined {
  if (x instanceof Tensor) return [x];
  if (x === null || typeof x !== "object" || (!Array.isArray(x) && Object.getPrototypeOf(x) !== Object.prototype))
    return undefined;
  const out: Tensor[] = [];
  const walk = (v: unknown): boolean => {
    if (v instanceof Tensor) {
      out.push(v);
      return true;
    }
    if (Array.isArray(v)) return v.every(walk);
    if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype)
      return Object.keys(v)
        .sort()
        .every((k) => walk((v as Record<string, unknown>)[k]));
    return false;
  };
  return walk(x) && out.length > 0 ? out : undefined;
}

function isDeviceTensor(v: unknown): v is DeviceTensor {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as DeviceTensor).ptr === "bigint" &&
    typeof (v as DeviceTensor).deviceIndex === "number" &&
    typeof (v as DeviceTensor).dtype === "string"
  );
}

function checkReducible(name: string, x: DeviceTensor, op: ReduceOp, what: string): void {
  if (!REDUCIBLE.includes(x.dtype)) {
    throw new TypeError(
      `plait: ${name}: argument ${what} has dtype ${x.dtype}, expected one of ${REDUCIBLE.join(", ")}`,
    );
  }
  if (op === "avg" && x.dtype === "i32") {
    throw new TypeError(`plait: ${name}: op "avg" needs a float dtype, argument ${what} is i32 (use "sum")`);
  }
}

function dispose(t: DeviceTensor): void {
  (t as { dispose?: () => void }).dispose?.();
}

function asyncError(nccl: NcclBinding, comm: bigint): number {
  const out = [0];
  const rc = nccl.fn.ncclCommGetAsyncError(comm, out);
  return rc === ncclSuccess ? out[0] : rc;
}

function lastError(nccl: NcclBinding, comm: bigint): string {
  if (comm === 0n) return "";
  try {
    const s = String(nccl.fn.ncclGetLastError(comm) ?? "");
    return s ? ` (NCCL: ${s})` : "";
  } catch {
    return "";
  }
}

const what = (call: Call) => `${call.name} (call #${call.seq})`;
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
