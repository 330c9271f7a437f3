import { rmSync } from "node:fs";
import { join } from "node:path";
import { save } from "../checkpoint/checkpoint.ts";
import { checkOptions } from "../core/options.ts";
import { type Callback, checkMode, checkMonitor, type Mode, monitored } from "./callback.ts";

export interface ModelCheckpointOptions {
  /** The folder the checkpoints go into (each one a checkpoint directory, as `save` writes). */
  dir: string;
  /** The metric that ranks checkpoints; without it, the latest `saveTopK` (1 or all) are kept. */
  monitor?: string;
  /** "min" (default): lower is better; "max": higher is better. */
  mode?: Mode;
  /** How many of the best to keep (default 1); -1 keeps every epoch's, 0 none. */
  saveTopK?: number;
  /** Also save `last` after every epoch, replacing the previous one (default false). */
  saveLast?: boolean;
}

/** The checkpoints kept, in the order they were saved, with their monitored values. */
export interface ModelCheckpointState {
  best: { name: string; score: number }[];
  /** The name of the best one so far (undefined before the first). */
  bestName: string | undefined;
}

const OP = "modelCheckpoint";
const OPTIONS = ["dir", "monitor", "mode", "saveTopK", "saveLast"] as const;

/**
 * Lightning's ModelCheckpoint as a value: after each epoch, saves the train state (with
 * `fit: { epoch, step, metrics, callbacks }` beside it: what `fit({ resume, callbackStates })`
 * continues from; put modelCheckpoint last so the other callbacks' states are this epoch's) as `epoch=E-step=S` when it ranks in the top k of
 * `monitor` (strictly better than the worst kept one once k are kept; a NaN ranks last), and
 * deletes the checkpoint it pushes out; `last` is rewritten after every epoch when `saveLast`.
 * Each save goes through the atomic `save`, so a crash leaves a whole checkpoint. With several
 * ranks, every rank saves its own state (its shards, under ZeRO/FSDP) into `dir/rank<r>/…`, as
 * `trainer.restore` takes it back; with one, into `dir/…`. Ties with the worst kept value keep
 * the older checkpoint; among equal worst values the first saved goes first (as Lightning).
 */
export function modelCheckpoint(options: ModelCheckpointOptions): Callback<ModelCheckpointState> {
  const opts = checkOptions(OP, options, OPTIONS);
  if (typeof opts.dir !== "string" || opts.dir === "") {
    throw new TypeError(`plait: ${OP}: option dir must be a folder path, got ${JSON.stringify(opts.dir)}`);
  }
  const monitor = opts.monitor === undefined ? undefined : checkMonitor(OP, opts.monitor);
  const mode = checkMode(OP, opts.mode ?? "min");
  const k = opts.saveTopK ?? 1;
  if (!Number.isInteger(k) || k < -1) {
    throw new RangeError(`plait: ${OP}: option saveTopK must be an integer ≥ -1, got ${String(k)}`);
  }
  if (monitor === undefined && k > 1) {
    throw new RangeError(
      `plait: ${OP}: saveTopK ${k} needs a monitor to rank the checkpoints by; without one, saveTopK is 1 (the latest), -1 (all) or 0`,
    );
  }
  const saveLast = opts.saveLast ?? false;
  if (typeof saveLast !== "boolean") throw new TypeError(`plait: ${OP}: option saveLast must be a boolean`);
  const worse = (a: number, b: number) => (mode === "min" ? a > b : a < b);

  return {
    name: OP,
    init: () => ({ best: [], bestName: undefined }),
    epochEnd(state, e) {
      const folder = e.worldSize > 1 ? join(opts.dir, `rank${e.rank}`) : opts.dir;
      let best = state.best;
      let bestName = state.bestName;
      const toWrite: string[] = [];
      let evict: string | undefined;
      const name = `epoch=${e.epoch}-step=${e.step}`;
      if (k !== 0) {
        // without a monitor every epoch ranks as the newest: keep the latest (k = 1) or all (-1)
        const raw = monitor === undefined ? e.epoch : monitored(OP, monitor, e.metrics);
        const score = Number.isNaN(raw) ? (mode === "min" ? Infinity : -Infinity) : raw;
        const ranked = monitor === undefined ? (mode === "min" ? -score : score) : score;
        const full = k !== -1 && best.length >= k;
        const worst = full ? worstOf(best, worse) : undefined;
        if (!full || (worst !== undefined && !Number.isNaN(raw) && worse(best[worst].score, ranked))) {
          toWrite.push(name);
          if (worst !== undefined) {
            evict = best[worst].name;
            best = best.filter((_, i) => i !== worst);
          }
          best = [...best, { name, score: ranked }];
          bestName = best[bestOf(best, worse)].name;
        }
      }
      if (saveLast) toWrite.push("last");
      const next = { best, bestName };
      // the callbacks' states as a resumed run needs them: this one's after this epoch's save
      const callbacks = e.callbackStates.map((s, i) => (i === e.index ? next : s));
      const fit = { epoch: e.epoch, step: e.step, metrics: { ...e.metrics }, callbacks };
      for (const n of toWrite) save(join(folder, n), { ...e.state, fit });
      if (evict !== undefined) rmSync(join(folder, evict), { recursive: true, force: true });
      return { state: next };
    },
  };
}

/** The index of the worst kept checkpoint: the first among equals, as Python's max/min. */
function worstOf(best: ModelCheckpointState["best"], worse: (a: number, b: number) => boolean): number {
  let w = 0;
  for (let i = 1; i < best.length; i++) if (worse(best[i].score, best[w].score)) w = i;
  return w;
}

function bestOf(best: ModelCheckpointState["best"], worse: (a: number, b: number) => boolean): number {
  let b = 0;
  for (let i = 1; i < best.length; i++) if (worse(best[b].score, best[i].score)) b = i;
  return b;
}
