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

const noop = () => {};

/**
 * Waiting for counters in the control block, with every exit bounded: the world's first fault,
 * a peer that ended or exited without arriving, the deadline and the abort signal all end a wait
 * with a CommError. Each is recorded as the fault of the rank it is about (the peer that ended,
 * exited or did not come in time; this rank for its own abort), so the others stop too.
 */
export class Rendezvous {
  constructor(
    private readonly ctl: Control,
    private readonly rank: number,
    private readonly spinMs = DEFAULT_SPIN_MS,
  ) {}

  /** The first rank from `from` on whose `field` counter is below `seq`, or -1. */
  behind(field: number, seq: number, from = 0): number {
    const { i32, worldSize } = this.ctl;
    for (let s = from; s < worldSize; s++) if (Atomics.load(i32, this.ctl.at(s, field)) < seq) return s;
    return -1;
  }

  /** Polls for up to spinMs: true when every rank's `field` reached the call's seq. */
  spin(field: number, call: Call): boolean {
    const { i32 } = this.ctl;
    let next = this.behind(field, call.seq);
    if (next < 0) return true;
    const now = performance.now();
    if (call.deadline === 0) call.deadline = now + call.timeoutMs;
    const until = now + this.spinMs;
    for (let i = 1; ; i++) {
      next = this.behind(field, call.seq, next);
      if (next < 0) return true;
      if (Atomics.load(i32, H.fault) !== 0) throw this.faultError(call.name);
      if ((i & 63) === 0 && performance.now() > until) return false;
    }
  }

  /** Sleeps on the bell until every rank's `field` reached the call's seq, or throws. */
  async sleep(field: number, call: Call): Promise<void> {
    const { i32 } = this.ctl;
    // Atomics.waitAsync does not keep Node's or Deno's event loop alive; this timer does.
    const keepAlive = setTimeout(noop, Math.min(MAX_TIMER_MS, Math.max(0, call.deadline - performance.now()) + 50));
    const wake = () => Atomics.notify(i32, H.bell);
    call.signal?.addEventListener("abort", wake);
    const arrived = () => this.behind(field, call.seq) < 0;
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
