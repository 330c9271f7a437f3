import { CommError, type CommFailure, describeError } from "./errors.ts";
import { type Control, H, R, STATE } from "./shm-control.ts";

/** One call in progress: what to name in errors, and when to stop waiting. */
export interface Call {
  readonly name: string;
  readonly seq: number;
  readonly timeoutMs: number;
  /** performance.now() past which waiting fails; 0 until the call first has to wait. */
  deadline: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * How long a waiting rank polls before it sleeps, unless told otherwise. A sleeping rank's
 * wake-up costs 15–90 µs (futex, measured on Node, Deno and Bun), a poll round trip ~0.3 µs;
 * spinning much longer would burn cores that other ranks (more ranks than cores) or kernel
 * threads need. Launchers pass a longer spin when every rank has cores of its own.
 */
export const DEFAULT_SPIN_MS = 0.05;
/** Longest single sleep: every wake re-checks faults, ended peers, the deadline and the signal. */
const MAX_SLEEP_MS = 1000;
/**
 * How long one wait may block its thread in Atomics.wait before it sleeps with
 * Atomics.waitAsync instead. A blocked thread wakes in 15–70 µs (p99, 2 ranks, Node 20, AMD EPYC
 * 2 vCPUs) against a waitAsync wake-up's p99 of 2.5–5 ms (the event loop must run the promise's
 * task), but runs no event loop: its timers, abort events and, on the thread that started the
 * world, the workers' exit events wait until it gives up blocking.
 */
const BLOCK_MS = 20;
/** Longest single Atomics.wait: the wait re-checks faults, ended peers and the deadline in between. */
const BLOCK_SLICE_MS = 5;
/** The shortest spin an adaptive wait falls back to (see Rendezvous.spin). */
const MIN_SPIN_MS = 0.01;
/** Spin iterations between two reads of the clock (a clock read allocates: see spin). */
const SPIN_CLOCK_EVERY = 256;
/** setTimeout's largest delay (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a failing rank waits for its peers to stop touching its buffers. */
const DRAIN_MS = 2000;

type WaitAsync = (
  i32: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync: WaitAsync | undefined = (Atomics as any).waitAsync;

/**
 * Whether this thread may block in Atomics.wait: Node, Deno and Bun let every thread block; a
 * browser's main thread throws. The check comes before the value comparison, so a wait on a
 * word that does not hold the expected value asks without blocking.
 */
let blockable: boolean | undefined;
function canBlock(): boolean {
  if (blockable === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      blockable = true;
    } catch {
      blockable = false;
    }
  }
  return blockable;
}

/**
 * One sleep on the bell: counted in `sleepers` first, then the bell is read and `ready` checked
 * again, so a ring that came before the count was seen is not lost (ring() only bumps and
 * notifies while someone sleeps). Atomics.waitAsync where the runtime has it (Node 20, Deno 2 and
 * Bun 1.4 do), else a 1 ms timer; returns on a ring, after `ms`, or at once if `ready()`.
 */
async function nap(i32: Int32Array, ready: () => boolean, ms: number): Promise<void> {
  Atomics.add(i32, H.sleepers, 1);
  try {
    const bell = Atomics.load(i32, H.bell);
    if (ready() || Atomics.load(i32, H.fault) !== 0) return;
    if (waitAsync) {
      const r = waitAsync(i32, H.bell, bell, ms);
      if (r.async) await r.value;
    } else {
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 1)));
    }
  } finally {
    Atomics.sub(i32, H.sleepers, 1);
  }
}

/** Per memory, per world (control block address and id): how many of its ranks this thread runs. */
const ranksHere = new WeakMap<WebAssembly.Memory, Map<string, { count: number }>>();

/** Counts one more rank of `ctl`'s world in this thread; the count is shared by its ranks here. */
function rankHere(ctl: Control): { count: number } {
  let worlds = ranksHere.get(ctl.memory);
  if (!worlds) {
    worlds = new Map();
    ranksHere.set(ctl.memory, worlds);
  }
  const key = `${ctl.base}:${ctl.id}`;
  const here = worlds.get(key) ?? { count: 0 };
  here.count++;
  worlds.set(key, here);
  return here;
}

/** A nap that blocks this thread (Atomics.wait, at most `ms`), with nap's protocol; see canBlock. */
function block(i32: Int32Array, ready: () => boolean, ms: number): void {
  Atomics.add(i32, H.sleepers, 1);
  try {
    const bell = Atomics.load(i32, H.bell);
    if (ready() || Atomics.load(i32, H.fault) !== 0) return;
    Atomics.wait(i32, H.bell, bell, ms);
  } finally {
    Atomics.sub(i32, H.sleepers, 1);
  }
}

const noop = () => {};

/**
 * Waiting for counters in the control block, with every exit bounded: the world's first fault,
 * a peer that ended or exited without arriving, the deadline and the abort signal all end a wait
 * with a CommError. Each is recorded as the fault of the rank it is about (the peer that ended,
 * exited or did not come in time; this rank for its own abort), so the others stop too.
 */
export class Rendezvous {
  /**
   * How long the next spin polls, in ms, between MIN_SPIN_MS and spinMs: a spin that saw its
   * peers arrive after w ms raises it to 2w; see wait for what a spin that gave up does.
   */
  private spinLimit: number;

  constructor(
    private readonly ctl: Control,
    private readonly rank: number,
    private readonly spinMs = DEFAULT_SPIN_MS,
  ) {
    this.spinLimit = spinMs;
    this.here = rankHere(ctl);
  }

  /**
   * How many ranks of this world this thread runs: blocking it (see wait) would also stop the
   * others, so with more than one a wait only spins and sleeps.
   */
  private readonly here: { count: number };

  /** The first rank from `from` on whose `field` counter is below `seq`, or -1. */
  behind(field: number, seq: number, from = 0): number {
    const { i32, worldSize } = this.ctl;
    for (let s = from; s < worldSize; s++) if (Atomics.load(i32, this.ctl.at(s, field)) < seq) return s;
    return -1;
  }

  /**
   * Polls for up to the spin limit: true when every rank's `field` reached the call's seq. The
   * clock is read every SPIN_CLOCK_EVERY polls only: until V8 optimises this loop, each
   * performance.now() leaves a heap number behind (~12 bytes of garbage per µs of spinning).
   */
  spin(field: number, call: Call): boolean {
    const { i32 } = this.ctl;
    let next = this.behind(field, call.seq);
    if (next < 0) return true;
    const start = performance.now();
    if (call.deadline === 0) call.deadline = start + call.timeoutMs;
    const until = start + this.spinLimit;
    for (let i = 1; ; i++) {
      next = this.behind(field, call.seq, next);
      if (next < 0) {
        const waited = performance.now() - start;
        if (2 * waited > this.spinLimit) this.spinLimit = Math.min(this.spinMs, 2 * waited);
        return true;
      }
      if (Atomics.load(i32, H.fault) !== 0) throw this.faultError(call.name);
      if (i % SPIN_CLOCK_EVERY === 0 && performance.now() > until) return false;
    }
  }

  /**
   * Waits without giving up the thread: spins (see spin), then, where this thread may block,
   * blocks in Atomics.wait for at most BLOCK_MS. True when every rank's `field` reached the
   * call's seq; false when the caller must go on with `sleep`; throws as `sleep` does.
   * After a spin that gave up, the spin limit doubles if the peers came within spinMs after all
   * (they were merely late), and halves if not (they were not running: spinning keeps a core
   * from them), between MIN_SPIN_MS and spinMs.
   */
  wait(field: number, call: Call): boolean {
    if (this.spin(field, call)) return true;
    const spun = this.spinLimit;
    const shorter = Math.max(Math.min(MIN_SPIN_MS, this.spinMs), spun / 2);
    if (this.here.count > 1 || !canBlock()) {
      this.spinLimit = shorter;
      return false;
    }
    const { i32 } = this.ctl;
    const start = performance.now();
    const end = Math.min(call.deadline, start + BLOCK_MS);
    const ready = () => this.behind(field, call.seq) < 0;
    for (;;) {
      if (ready()) {
        const late = spun + performance.now() - start < this.spinMs;
        this.spinLimit = late ? Math.min(this.spinMs, 2 * spun) : shorter;
        return true;
      }
      this.check(field, call);
      const left = end - performance.now();
      if (left <= 0) {
        this.spinLimit = shorter;
        return false;
      }
      block(i32, ready, Math.min(BLOCK_SLICE_MS, left));
    }
  }

  /** Sleeps on the bell until every rank's `field` reached the call's seq, or throws. */
  async sleep(field: number, call: Call): Promise<void> {
    const { i32 } = this.ctl;
    const arrived = () => this.behind(field, call.seq) < 0;
    // Atomics.waitAsync does not keep Node's or Deno's event loop alive; this timer does.
    const keepAlive = setTimeout(noop, Math.min(MAX_TIMER_MS, Math.max(0, call.deadline - performance.now()) + 50));
    const wake = () => Atomics.notify(i32, H.bell);
    call.signal?.addEventListener("abort", wake);
    const stop = () => arrived() || call.signal?.aborted === true;
    try {
      for (;;) {
        if (arrived()) return;
        this.check(field, call);
        await nap(i32, stop, Math.min(MAX_SLEEP_MS, Math.max(1, call.deadline - performance.now())));
      }
    } finally {
      clearTimeout(keepAlive);
      call.signal?.removeEventListener("abort", wake);
    }
  }

  /** Throws if the wait for `field` can no longer succeed. */
  private check(field: number, call: Call): void {
    if (Atomics.load(this.ctl.i32, H.fault) !== 0) throw this.faultError(call.name);
    const missing: number[] = [];
    for (let s = this.behind(field, call.seq); s >= 0; s = this.behind(field, call.seq, s + 1)) missing.push(s);
    for (const s of missing) {
      const state = this.ctl.state(s);
      if (state === STATE.ended) this.fail(call, "ended", `rank ${s} ended without calling ${what(call)}`, s);
      if (state === STATE.exited) this.fail(call, "exited", `rank ${s}'s worker exited before ${what(call)}`, s);
    }
    if (call.signal?.aborted) {
      this.fail(call, "aborted", `rank ${this.rank} aborted ${what(call)}: ${describeError(call.signal.reason)}`);
    }
    // The ranks that did not come are the failure, not this rank that waited for them: the first
    // of them is named as the failed rank, and they lead the sentence every rank will report.
    if (performance.now() >= call.deadline && missing.length > 0) {
      const verb = field === R.arrive ? "did not arrive in" : "did not finish";
      this.fail(
        call,
        "timeout",
        `${plural(missing)} ${missing.join(", ")} ${verb} ${what(call)}: rank ${this.rank} timed out after ${call.timeoutMs} ms`,
        missing[0],
      );
    }
  }

  /** Records a fault of `culprit` (default: this rank) unless one exists, and throws the first. */
  fail(call: Call, reason: CommFailure, text: string, culprit = this.rank): never {
    this.ctl.recordFault(culprit, reason, text);
    throw this.faultError(call.name);
  }

  /** The world's first fault as an error of collective `name`. */
  faultError(name: string): CommError {
    const f = this.ctl.fault();
    if (!f) throw new Error(`plait: ${name}: internal error: no fault recorded`);
    return new CommError(`plait: ${name}: ${f.text}`, f.reason, f.rank);
  }

  /**
   * After this rank gave up on call `seq`, waits (at most DRAIN_MS) until no live peer is still
   * reading or writing its buffers for that call, so the caller may free or reuse them.
   */
  async drain(seq: number): Promise<void> {
    const { i32, worldSize } = this.ctl;
    const busy = () => {
      for (let s = 0; s < worldSize; s++) {
        if (s !== this.rank && Atomics.load(i32, this.ctl.at(s, R.busy)) === seq && this.ctl.state(s) !== STATE.exited)
          return true;
      }
      return false;
    };
    const until = performance.now() + DRAIN_MS;
    const keepAlive = setTimeout(noop, DRAIN_MS + 50);
    try {
      for (;;) {
        if (!busy() || performance.now() >= until) return;
        await nap(i32, () => !busy(), Math.max(1, until - performance.now()));
      }
    } finally {
      clearTimeout(keepAlive);
    }
  }
}

const what = (call: Call) => `${call.name} (call #${call.seq})`;
const plural = (ranks: number[]) => (ranks.length === 1 ? "rank" : "ranks");
