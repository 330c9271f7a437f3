import { Worker } from "node:worker_threads";
import { CommError, describeError } from "../comm/errors.ts";
import { Control, controlBytes, type Fault, initControl, STATE } from "../comm/shm-control.ts";
import { acquireStackSlot } from "../core/instance.js";
import * as layout from "../core/layout.ts";
import { runtime, runtimeHandle } from "../core/runtime.ts";
import { releaseThread } from "../core/threads.ts";

/** What a rank's worker needs to start (structured-cloned into its workerData). */
export interface RankData {
  readonly handle: ReturnType<typeof runtimeHandle>;
  readonly control: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly threads: number;
  readonly timeoutMs: number;
  readonly spinMs: number | undefined;
  readonly mode: "script" | "spawn";
  /** URL of the script to re-run, or of the module whose function `fn` to call. */
  readonly module: string;
  readonly fn: string;
  readonly args: unknown;
  /** The world's own stack slot: the rank thread's parent (see releaseThread and World.slot). */
  readonly parentSlot: number;
  /** The starting thread's process.argv and process.execArgv, which every rank sees as its own. */
  readonly argv: readonly string[];
  readonly execArgv: readonly string[];
  /** Set when this world is one process's threads among several (an MPI job): see HierComm. */
  readonly outer: OuterWorld | undefined;
}

/** Where a world of threads sits among the processes of a job. */
export interface OuterWorld {
  readonly processRank: number;
  readonly processes: number;
}

/** Messages a rank's worker posts to the thread that started it. */
export type RankMessage =
  | { type: "ready" }
  | { type: "done"; value: unknown } // spawn: the function's result (a script rank just exits)
  | { type: "error"; error: unknown }
  // the worker's event loop emptied while its script (or function) still awaited something
  | { type: "stuck" };

export interface WorldOptions {
  /** "launch" or "spawn": what errors are named after. */
  name: string;
  worldSize: number;
  /** Ranks from this one on run in workers: 1 for launch() (the caller is rank 0), 0 for spawn(). */
  firstRank: number;
  mode: "script" | "spawn";
  module: string;
  fn?: string;
  args?: unknown;
  threads: number;
  timeoutMs: number;
  /** Each rank's spin before sleeping in a collective (see spinMsFor). */
  spinMs: number | undefined;
  /** The world's one-barrier allreduce limit (see smallBytesFor). */
  smallBytes: number;
  /** The processes this world is one of (launch/spawn under mpirun or srun). */
  outer?: OuterWorld;
  /** Called once, when the world fails (before its workers are gone). */
  onFailure?: (error: CommError) => void;
}

const STARTUP_TIMEOUT_MS = 60_000;
const IS_DENO = (globalThis as { Deno?: unknown }).Deno !== undefined;
/** How long a failed world waits for the failing rank's own error (its `cause`) before terminating. */
const CAUSE_GRACE_MS = 200;
const TERMINATE_TIMEOUT_MS = 5_000;
/** The longest a stop waits for a rank still starting to finish its start (see terminate). */
const START_GRACE_MS = 3_000;
/** How often the starting thread looks for a timeout recorded by a rank (see World.check). */
const WATCH_MS = 100;

let live = 0;

/** Workers started by launch() or spawn() in this thread that have not exited yet. */
export function liveWorkers(): number {
  return live;
}

/**
 * The thread that starts a world: allocates its control block, starts one worker per rank from
 * `firstRank` on, collects their results, and turns any rank's failure (an error, an early exit,
 * a failed start) into the world's fault, then terminates every worker.
 */
export class World {
  readonly control: number;
  readonly ctl: Control;
  /** Settles when every worker has posted ready (or the world failed first). */
  readonly ready: Promise<void>;
  /** Settles when every worker has exited: their results in rank order, or the world's failure. */
  readonly done: Promise<unknown[]>;
  private readonly workers = new Map<number, Worker>();
  /**
   * A stack slot held for the world's lifetime, no thread's own: every rank thread is recorded
   * as its child, so that releasing it gives back every rank's slot (and its pool's), including
   * a rank stopped after it took its slot but before it could say which one it took.
   */
  private readonly slot: number;
  private readonly watch: ReturnType<typeof setInterval>;
  private readonly errors = new Map<number, unknown>();
  private readonly results: unknown[];
  private readonly finished = new Set<number>();
  private readonly readyRanks = new Set<number>();
  /** Per rank still starting: settles when it posts ready or its worker exits. */
  private readonly starting = new Map<number, { done: Promise<void>; resolve: () => void }>();
  private fault: Fault | undefined;
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** A worker could not be terminated: the control block must stay allocated. */
  private lost = false;
  /** Set when the world settles: whether its ranks' memory (and the control block) may be reused. */
  private reusable = false;
  private resolveReady!: () => void;
  private rejectReady!: (e: unknown) => void;
  private resolveDone!: (v: unknown[]) => void;
  private rejectDone!: (e: unknown) => void;
  private startupTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly opts: WorldOptions) {
    const rt = runtime();
    const handle = runtimeHandle();
    this.slot = acquireStackSlot(rt.memory, layout, rt.k.stackSlot);
    this.control = rt.arena.alloc(controlBytes(opts.worldSize, opts.smallBytes));
    initControl(rt.memory, this.control, opts.worldSize, opts.smallBytes);
    this.ctl = new Control(rt.memory, this.control);
    this.results = new Array(opts.worldSize - opts.firstRank);
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Either may be left unobserved when the other one carries the failure.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    const entry = new URL("./rank-worker.js", import.meta.url);
    const proc = (globalThis as { process?: { argv?: string[]; execArgv?: string[] } }).process;
    for (let rank = opts.firstRank; rank < opts.worldSize; rank++) {
      const data: RankData = {
        handle,
        control: this.control,
        rank,
        worldSize: opts.worldSize,
        threads: opts.threads,
        timeoutMs: opts.timeoutMs,
        spinMs: opts.spinMs,
        mode: opts.mode,
        module: opts.module,
        fn: opts.fn ?? "",
        args: opts.args,
        parentSlot: this.slot,
        argv: [...(proc?.argv ?? [])],
        execArgv: [...(proc?.execArgv ?? [])],
        outer: opts.outer,
      };
      let worker: Worker;
      try {
        worker = new Worker(entry, { workerData: data });
      } catch (e) {
        this.fail(rank, "failed", `rank ${this.named(rank)}'s worker could not start: ${describeError(e)}`, e);
        break;
      }
      live++;
      this.workers.set(rank, worker);
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      this.starting.set(rank, { done, resolve });
      worker.on("message", (m: RankMessage) => this.onMessage(rank, m));
      worker.on("error", (e) => this.fail(rank, "failed", `rank ${this.named(rank)} failed: ${describeError(e)}`, e));
      worker.on("exit", (code) => this.onExit(rank, code));
    }
    this.startupTimer = setTimeout(() => {
      const missing = [...this.workers.keys()].filter((r) => !this.readyRanks.has(r));
      this.fail(
        missing[0],
        "timeout",
        `ranks ${missing.map((r) => this.named(r)).join(", ")} did not start within ${STARTUP_TIMEOUT_MS} ms`,
      );
    }, STARTUP_TIMEOUT_MS);
    this.watch = setInterval(() => this.check(), WATCH_MS);
    if (this.workers.size === 0) this.settle();
  }

  /**
   * Takes up a timeout that a rank recorded in the control block. The rank it names did not
   * come to a collective in time and may never: it is stopped now, with the others, so that
   * nothing waits for it (spawn's promise, launch's join(), the process's exit). Other faults a
   * rank records (a peer that ended, an abort, a mismatch) end their collectives at once and
   * leave the ranks running: they may catch the error and finish.
   */
  check(): void {
    if (this.fault || this.workers.size === 0) return;
    const f = this.ctl.fault();
    if (f?.reason === "timeout") this.fail(f.rank, "timeout", f.text);
  }

  /**
   * Stops every worker; `done` settles once they have exited. A rank that is running stops now;
   * one still starting is stopped once it has started (at most START_GRACE_MS later): while it
   * attaches to the runtime it takes the shared heap's lock, which a thread stopped inside it
   * would hold forever. A worker that has not exited after TERMINATE_TIMEOUT_MS more is given up
   * on, so that nothing waits forever (its memory is then never given back: it may still run).
   */
  terminate(): Promise<void> {
    let grace: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, START_GRACE_MS);
    });
    const exits = Promise.all(
      [...this.workers].map(async ([rank, worker]) => {
        const starting = this.starting.get(rank);
        if (starting) await Promise.race([starting.done, late]);
        await worker.terminate();
      }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), START_GRACE_MS + TERMINATE_TIMEOUT_MS);
    });
    return Promise.race([exits.then(() => false), limit]).then((timedOut) => {
      clearTimeout(timer);
      clearTimeout(grace);
      if (!timedOut || this.workers.size === 0) return;
      this.lost = true;
      live -= this.workers.size;
      this.workers.clear();
      this.settle();
    });
  }

  /** Gives the control block back; only once `done` has settled and no rank of this thread uses it. */
  release(): void {
    if (this.reusable) runtime().arena.free(this.control);
  }

  /** A rank as errors name it: its global rank when this world is one process's threads of a job. */
  private named(rank: number): number {
    const outer = this.opts.outer;
    return outer ? outer.processRank * this.opts.worldSize + rank : rank;
  }

  private onMessage(rank: number, m: RankMessage): void {
    if (m.type === "ready") {
      this.readyRanks.add(rank);
      this.started(rank);
      if (this.readyRanks.size === this.workers.size) {
        clearTimeout(this.startupTimer);
        this.resolveReady();
      }
    } else if (m.type === "done") {
      this.results[rank - this.opts.firstRank] = m.value;
      this.finished.add(rank);
      void this.workers.get(rank)?.terminate();
    } else if (m.type === "error") {
      this.fail(rank, "failed", `rank ${this.named(rank)} failed: ${describeError(m.error)}`, m.error);
    } else if (m.type === "stuck") {
      const ended =
        this.opts.mode === "script" ? "'s script ended without calling join()" : `'s ${this.opts.fn}() never returned`;
      this.fail(
        rank,
        "exited",
        `rank ${this.named(rank)}${ended}: its event loop emptied while it was still awaiting a promise that nothing was left to settle`,
      );
    }
  }

  private started(rank: number): void {
    this.starting.get(rank)?.resolve();
    this.starting.delete(rank);
  }

  private onExit(rank: number, code: number): void {
    if (!this.workers.has(rank)) return; // given up on by terminate()
    live--;
    this.started(rank);
    // a script rank is done when its worker exits on its own, like a process whose script ended
    if (this.opts.mode === "script" && code === 0 && !this.errors.has(rank)) this.finished.add(rank);
    this.workers.delete(rank);
    if (!this.finished.has(rank) || this.graceTimer) {
      this.fail(rank, "exited", `rank ${this.named(rank)}'s worker exited with code ${code} before its work was done`);
    }
    // It no longer touches anyone's buffers (see Rendezvous.drain); set after the fault, so that
    // peers that see the state find the coordinator's account of the exit already recorded.
    // A script rank that ended is marked so too: peers still waiting for it fail at once.
    if (!this.finished.has(rank)) this.ctl.setState(rank, STATE.exited);
    else if (this.ctl.state(rank) === STATE.running) this.ctl.setState(rank, STATE.ended);
    if (this.workers.size === 0) this.settle();
  }

  /**
   * The world fails: the first fault recorded in the control block is the one reported (a rank
   * that failed because a peer failed first is not the cause), and every worker is terminated,
   * after a short grace for the failing rank's own error to arrive when it is still running.
   */
  private fail(rank: number, reason: "failed" | "exited" | "timeout", text: string, cause?: unknown): void {
    if (cause !== undefined && !this.errors.has(rank)) this.errors.set(rank, cause);
    if (this.fault) {
      if (this.graceTimer && (rank === this.fault.rank || !this.workers.has(this.fault.rank))) this.stopAll();
      return;
    }
    clearTimeout(this.startupTimer);
    this.ctl.recordFault(rank, reason, text);
    this.fault = this.ctl.fault()!;
    const error = this.error();
    this.rejectReady(error);
    this.opts.onFailure?.(error);
    // A rank that timed out waiting records the late rank as the fault: no error will come from it.
    const waitForCause =
      !this.errors.has(this.fault.rank) && this.workers.has(this.fault.rank) && this.fault.reason !== "timeout";
    if (waitForCause) this.graceTimer = setTimeout(() => this.stopAll(), CAUSE_GRACE_MS);
    else this.stopAll();
  }

  private stopAll(): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    void this.terminate();
  }

  private error(): CommError {
    const f = this.fault!;
    return new CommError(`plait: ${this.opts.name}: ${f.text}`, f.reason, f.rank, { cause: this.errors.get(f.rank) });
  }

  private settle(): void {
    clearTimeout(this.startupTimer);
    clearTimeout(this.graceTimer);
    clearInterval(this.watch);
    // Every worker has exited, so no rank thread reads or writes shared memory any more: their
    // memory, stack slots and kernel pools go back. Not when one could not be stopped, nor on
    // Deno after a failure: Deno reports a terminated worker's exit while the worker, if it is
    // running JavaScript, goes on (Deno 2.9.6: a terminated worker's loop kept writing shared
    // memory for as long as it was watched), so a rank stopped mid-work may still touch it.
    this.reusable = !this.lost && !(IS_DENO && this.fault);
    if (this.reusable) releaseThread(this.slot);
    if (this.fault) this.rejectDone(this.error());
    else this.resolveDone(this.results);
  }
}
