import { Worker } from "node:worker_threads";
import type { Arena } from "./arena.ts";
import { releaseStackSlot } from "./instance.js";
import type { KernelModules } from "./instance-types.ts";
import * as layout from "./layout.ts";
import { SLOT, SPIN_ITERATIONS } from "./pool-protocol.js";

/** One piece of a parallel kernel call: an export ("as.add_f32", "c.gemm_f32") and its arguments. */
export interface Job {
  fn: string;
  args: readonly number[];
}

const STARTUP_TIMEOUT_MS = 30_000;

/**
 * Threads that run kernels over the shared memory. The calling thread is thread 0 and runs the
 * first job itself; the others each own a job slot in the shared memory, posted with a sequence
 * number and Atomics.notify, so a parallel kernel call stays synchronous for the caller.
 */
export class Pool {
  private readonly workers: Worker[] = [];
  private readonly slots: { i32: Int32Array; f64: Float64Array }[] = [];
  private readonly index = new Map<string, number>();
  private readonly slotBase: number;
  private seq = 0;

  constructor(
    private readonly memory: WebAssembly.Memory,
    modules: KernelModules,
    private readonly arena: Arena,
    private readonly local: Record<string, Record<string, (...args: number[]) => unknown>>,
    /** The stack slot of the thread that owns this pool (its workers' parent). */
    parent: number,
    /** Threads in all, the caller included. */
    readonly size: number,
  ) {
    const names: string[] = [];
    for (const mod of ["as", "c"] as const) {
      for (const e of WebAssembly.Module.exports(modules[mod]))
        if (e.kind === "function") names.push(`${mod}.${e.name}`);
    }
    for (const [i, n] of names.entries()) this.index.set(n, i);
    this.slotBase = arena.alloc(SLOT.bytes * Math.max(size - 1, 1));
    new Uint8Array(memory.buffer, this.slotBase, SLOT.bytes * Math.max(size - 1, 1)).fill(0);
    const url = new URL("./pool-worker.js", import.meta.url);
    for (let w = 0; w < size - 1; w++) {
      const slotByte = this.slotBase + w * SLOT.bytes;
      this.slots.push({
        i32: new Int32Array(memory.buffer, slotByte, SLOT.bytes / 4),
        f64: new Float64Array(memory.buffer, slotByte, SLOT.bytes / 8),
      });
      const worker = new Worker(url, {
        workerData: { memory, modules, layout: { ...layout }, slotByte, names, parent },
      });
      worker.on("message", (m) => {
        if (m?.error) console.error(`plait: pool thread ${w + 1}: ${m.error}`);
      });
      worker.unref(); // after on("message"), which would ref it again: idle pool threads never keep a process alive
      this.workers.push(worker);
    }
    for (const [w, s] of this.slots.entries()) {
      if (Atomics.wait(s.i32, SLOT.ready, 0, STARTUP_TIMEOUT_MS) === "timed-out" && s.i32[SLOT.ready] === 0) {
        this.close();
        throw new Error(`plait: kernel pool thread ${w + 1} did not start within ${STARTUP_TIMEOUT_MS} ms`);
      }
    }
  }

  /** Runs jobs[0] here and jobs[1..] on pool threads 1..; returns when all are done. */
  run(jobs: readonly Job[]): void {
    if (jobs.length > this.size) throw new RangeError(`plait: ${jobs.length} jobs for a pool of ${this.size} threads`);
    const seq = ++this.seq;
    for (let j = 1; j < jobs.length; j++) {
      const { i32, f64 } = this.slots[j - 1];
      const job = jobs[j];
      const fn = this.index.get(job.fn);
      if (fn === undefined) throw new Error(`plait: no kernel named ${job.fn}`);
      if (job.args.length > SLOT.maxArgs) throw new RangeError(`plait: ${job.fn} takes at most ${SLOT.maxArgs} args`);
      i32[SLOT.fn] = fn;
      i32[SLOT.nargs] = job.args.length;
      for (let a = 0; a < job.args.length; a++) f64[SLOT.args + a] = job.args[a];
      Atomics.store(i32, SLOT.seq, seq);
      Atomics.notify(i32, SLOT.seq);
    }
    if (jobs.length > 0) {
      const [mod, fn] = jobs[0].fn.split(".");
      this.local[mod][fn](...jobs[0].args);
    }
    let failed = 0;
    for (let j = 1; j < jobs.length; j++) {
      const { i32 } = this.slots[j - 1];
      for (let spins = 0; Atomics.load(i32, SLOT.done) !== seq; ) {
        if (++spins > SPIN_ITERATIONS) Atomics.wait(i32, SLOT.done, Atomics.load(i32, SLOT.done), 100);
      }
      if (i32[SLOT.status] !== 0) failed = j;
    }
    if (failed) throw new Error(`plait: kernel ${jobs[failed].fn} failed on pool thread ${failed}`);
  }

  close(): void {
    for (const s of this.slots) {
      Atomics.store(s.i32, SLOT.seq, -1);
      Atomics.notify(s.i32, SLOT.seq);
    }
    for (const w of this.workers) void w.terminate();
    for (const s of this.slots) if (s.i32[SLOT.ready]) releaseStackSlot(this.memory, layout, s.i32[SLOT.stackSlot]);
    this.workers.length = 0;
    this.slots.length = 0;
    this.arena.free(this.slotBase);
  }
}
