import type { Comm } from "../comm/types.ts";
import { Tensor } from "../core/tensor.ts";

/** How a logged value is combined: over the calls of one epoch on a rank, then over the ranks. */
export type Reduce = "mean" | "sum";

export interface LogOptions {
  /** "mean" (default): the mean of the epoch's calls, then the mean over ranks; "sum": sums both times. */
  reduce?: Reduce;
}

/** Logs a metric for the current epoch (Lightning's `self.log(name, value, sync_dist=True)`). */
export type LogFn = (name: string, value: number, opts?: LogOptions) => void;

/** Names fit logs itself; a user's log of one is an error. */
export const RESERVED = ["loss", "epoch", "step"] as const;

interface Entry {
  reduce: Reduce;
  sum: number;
  count: number;
}

/**
 * One epoch's logged values on one rank, in the order they were first logged. `sync` combines
 * them over the ranks: every rank must have logged the same names with the same reduce, in the
 * same order (checked with one collective), and the values then travel in one f64 sum.
 */
export class EpochLog {
  private readonly entries = new Map<string, Entry>();

  /** The LogFn that writes into this epoch's log. */
  readonly log: LogFn = (name, value, opts) => {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`plait: log: name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    if ((RESERVED as readonly string[]).includes(name)) {
      throw new RangeError(
        `plait: log: "${name}" is one of the values fit records itself (${RESERVED.join(", ")}); pick another name`,
      );
    }
    if (typeof value !== "number") {
      throw new TypeError(`plait: log: ${name}: value must be a number, got ${typeof value} ${String(value)}`);
    }
    const reduce = opts?.reduce ?? "mean";
    if (reduce !== "mean" && reduce !== "sum") {
      throw new RangeError(`plait: log: ${name}: option reduce must be "mean" or "sum", got ${JSON.stringify(reduce)}`);
    }
    const e = this.entries.get(name);
    if (e && e.reduce !== reduce) {
      throw new RangeError(`plait: log: ${name} was logged with reduce "${e.reduce}" this epoch, now with "${reduce}"`);
    }
    if (e) {
      e.sum += value;
      e.count++;
    } else this.entries.set(name, { reduce, sum: value, count: 1 });
  };

  /** This rank's values: per name, the mean or the sum of its calls. */
  local(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, e] of this.entries) out[name] = e.reduce === "mean" ? e.sum / e.count : e.sum;
    return out;
  }

  /**
   * The values combined over the ranks of `comm` (the same on every rank): a "mean" is the f64
   * sum of the ranks' values in rank order divided by the world size, a "sum" that sum. Every
   * rank makes the same two collectives, whatever it logged; ranks that logged different names
   * all fail with the same error.
   */
  async sync(comm: Comm): Promise<Record<string, number>> {
    const local = this.local();
    if (comm.worldSize === 1) return local;
    const names = [...this.entries.keys()];
    const sig = fnv1a(names.map((n) => `${n}:${this.entries.get(n)!.reduce}`).join("\n"));
    const check = new Tensor([4], "f64");
    try {
      check.data().set([names.length, sig, -names.length, -sig]);
      await comm.allReduce(check, "max");
      const [maxN, maxSig, negMinN, negMinSig] = check.data();
      if (maxN !== -negMinN || maxSig !== -negMinSig) {
        throw new Error(
          `plait: fit: the ranks logged different metrics this epoch (rank ${comm.rank}: [${names.join(", ")}]); every rank must log the same names with the same reduce, in the same order`,
        );
      }
    } finally {
      check.dispose();
    }
    if (names.length === 0) return local;
    const values = new Tensor([names.length], "f64");
    try {
      values.data().set(names.map((n) => local[n]));
      await comm.allReduce(values, "sum");
      const summed = values.data();
      return Object.fromEntries(
        names.map((n, i) => [n, this.entries.get(n)!.reduce === "mean" ? summed[i] / comm.worldSize : summed[i]]),
      );
    } finally {
      values.dispose();
    }
  }
}

/** 32-bit FNV-1a of a string's UTF-16 code units: exact in an f64. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
