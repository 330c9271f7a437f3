import { checkOptions } from "../core/options.ts";
import { scope } from "../core/scope.ts";
import type { StepOut } from "../step/contract.ts";
import type { Trainer, TrainState } from "../step/train.ts";
import { Progress, type ProgressMode, type ProgressSink } from "./progress.ts";

/** What `trainEpochs` reports after each step. */
export interface StepEvent {
  epoch: number;
  /** Index of the batch within the epoch. */
  batch: number;
  out: StepOut;
}

/** One epoch's summary: mean training loss, timing, and whatever `evaluate` returned. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  samples: number;
  seconds: number;
  skipped: number;
  metrics: Record<string, number>;
}

export interface TrainEpochsOptions<B> {
  trainer: Trainer<B>;
  state: TrainState;
  epochs: number;
  /** The batches of an epoch (1-based epoch numbers), each made when needed and freed after its step. */
  batches: (epoch: number) => { count: number; get: (i: number) => B; size: (b: B, i: number) => number };
  /** Metrics after each epoch (e.g. test accuracy; awaited, so it may use collectives); not timed as training. */
  evaluate?: (state: TrainState, epoch: number) => Record<string, number> | Promise<Record<string, number>>;
  /** After each step (awaited). */
  onStep?: (e: StepEvent) => void | Promise<void>;
  /** After each epoch's record is printed (awaited): returning true ends the run after this epoch. */
  afterEpoch?: (record: EpochRecord, state: TrainState) => boolean | undefined | Promise<boolean | undefined>;
  /** "bar" on a TTY, "lines" otherwise, "none" for --json; default "none". */
  progress?: ProgressMode;
  progressTo?: ProgressSink;
  /** The first epoch to run (default 1): a resumed run continues at the epoch after its checkpoint's. */
  firstEpoch?: number;
}

const TRAIN_EPOCHS_OPTIONS = [
  "trainer",
  "state",
  "epochs",
  "batches",
  "evaluate",
  "onStep",
  "afterEpoch",
  "progress",
  "progressTo",
  "firstEpoch",
] as const;

/**
 * Runs the training loop: each batch is made inside a scope (its tensors freed after the step),
 * stepped through the trainer, reported to `onStep`; after each epoch, `evaluate` runs, the
 * epoch's record is kept and printed, and `afterEpoch` may end the run. Returns the final state
 * and the history. `fit` builds on it (validation, synced metrics, callbacks).
 */
export async function trainEpochs<B>(
  options: TrainEpochsOptions<B>,
): Promise<{ state: TrainState; history: EpochRecord[] }> {
  const opts = checkOptions("trainEpochs", options, TRAIN_EPOCHS_OPTIONS);
  const progress = new Progress(opts.progress ?? "none", opts.progressTo ?? process.stderr, opts.epochs);
  let state = opts.state;
  const history: EpochRecord[] = [];
  for (let epoch = opts.firstEpoch ?? 1; epoch <= opts.epochs; epoch++) {
    const { count, get, size } = opts.batches(epoch);
    let lossSum = 0;
    let samples = 0;
    let skipped = 0;
    let seconds = 0;
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const { out, n } = await scope(async () => {
        const batch = get(i);
        const r = await opts.trainer(state, batch);
        state = r.state;
        return { out: r.out, n: size(batch, i) };
      });
      seconds += (performance.now() - t0) / 1000;
      lossSum += out.loss * n;
      samples += n;
      if (out.skip) skipped++;
      await opts.onStep?.({ epoch, batch: i, out });
      progress.step(epoch, i + 1, count, out.loss);
    }
    const metrics = (await opts.evaluate?.(state, epoch)) ?? {};
    const record = { epoch, loss: lossSum / Math.max(samples, 1), samples, seconds, skipped, metrics };
    history.push(record);
    const extra = Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`);
    progress.epochEnd(
      epoch,
      [`loss ${record.loss.toFixed(4)}`, ...extra, `${(samples / seconds).toFixed(0)} samples/s`].join("  "),
    );
    if (await opts.afterEpoch?.(record, state)) break;
  }
  return { state, history };
}
