import { localComm } from "../comm/local.ts";
import type { Comm } from "../comm/types.ts";
import { checkOptions } from "../core/options.ts";
import { scope } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import type { EpochBatches } from "../data/dataset.ts";
import { currentWorkerRank } from "../launch/context.ts";
import type { Trainer, TrainState } from "../step/train.ts";
import type { Callback, EpochEndEvent } from "./callback.ts";
import { EpochLog, type LogFn } from "./metrics.ts";
import { type ProgressMode, type ProgressSink, progressMode } from "./progress.ts";
import { type EpochRecord, trainEpochs } from "./trainEpochs.ts";

/** What a validation function is given each epoch, on every rank. */
export interface ValidateCtx {
  readonly epoch: number;
  readonly state: TrainState;
  /** The full params (gathered under ZeRO/FSDP), freed after the function returns. */
  readonly params: Tree;
  readonly rank: number;
  readonly worldSize: number;
  readonly log: LogFn;
}

/** What fit takes batches from: a DataLoader, or anything with its `epoch` (0-based). */
export interface BatchSource<B> {
  epoch(epoch: number): EpochBatches<B>;
}

/** Validation as a loader and a function of one batch's metrics (each a mean over the batch). */
export interface ValidateLoader<V> {
  data: BatchSource<V>;
  metrics: (params: Tree, batch: V) => Record<string, number>;
}

export interface FitOptions<B, V = unknown> {
  trainer: Trainer<B>;
  state: TrainState;
  /** This rank's training batches: a DataLoader (sharded for this rank), or its `epoch` as a function. */
  train: BatchSource<B> | ((epoch: number) => EpochBatches<B>);
  /**
   * After each epoch, on every rank: a function that logs what it measures, or a loader and a
   * metrics function (each metric's sample-weighted mean over this rank's batches, then the mean
   * over ranks, is logged under its name).
   */
  validate?: ((ctx: ValidateCtx) => void | Promise<void>) | ValidateLoader<V>;
  epochs: number;
  callbacks?: readonly Callback<any>[];
  /** The callbacks' states to start from (what a previous fit returned), in the same order. */
  callbackStates?: readonly unknown[];
  /**
   * What rank 0 prints: "bar" (a redrawn progress bar, then a line per epoch), "lines" (a line
   * per epoch), "none". Default: "bar" on a terminal, else "lines". Other ranks print nothing.
   */
  log?: ProgressMode;
  /** Where rank 0 prints (default process.stderr). */
  logTo?: ProgressSink;
  /**
   * Continue a run from a checkpoint's `fit: { epoch, step }` (what modelCheckpoint saves beside
   * the state): training goes on at the next epoch, with the same shuffles and step numbers as a
   * run that never stopped. Pass the restored state and the checkpoint's `fit.callbacks` as
   * `callbackStates` too.
   */
  resume?: { epoch: number; step: number };
  /**
   * The communicator the trainer was given (ctx.comm in a rank): the loss and logged metrics are
   * reduced over it. Needed in a world of several ranks; default a world of one.
   */
  comm?: Comm;
}

/** What fit returns: the final state, each epoch's record, the callbacks' states, and why it stopped early. */
export interface FitResult {
  state: TrainState;
  /** Per epoch: the mean training loss over all ranks, timing, and `metrics` (everything logged, synced). */
  history: EpochRecord[];
  callbackStates: unknown[];
  stopped?: { epoch: number; by: string; reason: string };
}

const OP = "fit";
const OPTIONS = [
  "trainer",
  "state",
  "train",
  "validate",
  "epochs",
  "callbacks",
  "callbackStates",
  "log",
  "logTo",
  "resume",
  "comm",
] as const;

/**
 * Lightning's Trainer.fit as a function, on top of `trainEpochs`. Every rank runs it with its
 * own loader shard and its comm. Each step: the loss is averaged over the ranks (one f64
 * all-reduce), and a NaN or infinite loss that no loss scaler skipped stops the run on every rank
 * with an error naming the epoch and step. Each epoch: the step's `metrics` are logged (mean),
 * `validate` runs on the full params, each callback's `log` hook runs, everything logged is
 * synced over the ranks (`log(name, value, { reduce })`), rank 0 prints the epoch's line, then
 * each callback's `epochEnd` sees the synced metrics (`loss`, the mean training loss, included);
 * any of them may end the run. Under withDP, the ranks other than 0 serve rank 0's steps and
 * return the state they were given; rank 0's loader must then hold whole batches.
 */
export async function fit<B, V = unknown>(options: FitOptions<B, V>): Promise<FitResult> {
  const opts = checkOptions(OP, options, OPTIONS);
  const { trainer, epochs } = opts;
  if (typeof trainer !== "function" || typeof trainer.gather !== "function") {
    throw new TypeError(`plait: ${OP}: option trainer must be a Trainer (from train(step, optimizer))`);
  }
  if (!Number.isSafeInteger(epochs) || epochs < 1) {
    throw new RangeError(`plait: ${OP}: option epochs must be an integer ≥ 1, got ${String(epochs)}`);
  }
  const st = opts.state as Partial<TrainState> | undefined;
  if (st === null || typeof st !== "object" || typeof st.opt?.step !== "number") {
    throw new TypeError(`plait: ${OP}: option state must be a TrainState (from await trainer.init(params))`);
  }
  const resume = opts.resume ?? { epoch: 0, step: 0 };
  const whole = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (resume === null || typeof resume !== "object" || !whole(resume.epoch) || !whole(resume.step)) {
    throw new TypeError(
      `plait: ${OP}: option resume must be { epoch, step } (integers ≥ 0, a checkpoint's fit), got ${JSON.stringify(resume)}`,
    );
  }
  if (resume.epoch >= epochs) {
    throw new RangeError(
      `plait: ${OP}: resume.epoch ${resume.epoch} is not before epochs ${epochs}: nothing is left to train`,
    );
  }
  const batchesOf = trainBatches(opts.train);
  const callbacks = checkCallbacks(opts.callbacks ?? []);
  const comm = opts.comm ?? localComm();
  const worker = currentWorkerRank();
  if (opts.comm === undefined && worker && worker.ctx.worldSize > 1) {
    throw new Error(
      `plait: ${OP}: this thread is rank ${worker.ctx.rank} of ${worker.ctx.worldSize}; pass comm (the rank's ctx.comm, as given to train) so the loss and metrics are reduced over the ranks`,
    );
  }
  // withDP: rank 0 alone drives the loop (its comm is a world of one); the others serve it
  const dp = typeof trainer.step?.serve === "function";
  if (dp && comm.rank !== 0) {
    await trainer.serve(opts.state);
    return { state: opts.state, history: [], callbackStates: callbacks.map((c) => c.init()) };
  }
  const sync = dp ? localComm() : comm;
  checkShard(opts.train, sync);
  const states = opts.callbackStates ? [...opts.callbackStates] : callbacks.map((c) => c.init());
  if (states.length !== callbacks.length) {
    throw new RangeError(
      `plait: ${OP}: callbackStates holds ${states.length} states for ${callbacks.length} callbacks`,
    );
  }

  const mode = sync.rank === 0 ? (opts.log ?? progressMode(opts.logTo ?? process.stderr, false)) : "none";
  let log = new EpochLog();
  let step = resume.step;
  let firstStep = opts.state.opt.step;
  let count = 0;
  let stopped: FitResult["stopped"];
  const ranked = Object.assign(
    async (state: TrainState, batch: B) => {
      const r = await trainer(state, batch);
      if (sync.worldSize === 1) return r;
      const t = new Tensor([1], "f64");
      try {
        t.data()[0] = r.out.loss;
        await sync.allReduce(t, "sum");
        return { ...r, out: { ...r.out, loss: t.data()[0] / sync.worldSize } };
      } finally {
        t.dispose();
      }
    },
    { ...trainer },
  ) as Trainer<B>;

  const { state, history } = await trainEpochs<B>({
    trainer: ranked,
    state: opts.state,
    epochs,
    batches: (epoch) => {
      const e = batchesOf(epoch - 1);
      count = e.count;
      return e;
    },
    onStep: ({ epoch, batch, out }) => {
      step++;
      if (!out.skip && !Number.isFinite(out.loss)) {
        throw new Error(
          `plait: ${OP}: the loss is ${out.loss} at epoch ${epoch}, step ${step} (batch ${batch + 1} of ${count}); the run diverged: lower the learning rate, clip the gradients or scale the loss`,
        );
      }
      for (const [name, value] of Object.entries(out.metrics ?? {})) log.log(name, value);
    },
    evaluate: async (s, epoch) => {
      const validate = opts.validate;
      if (validate !== undefined) {
        const params = await trainer.gather(s);
        try {
          const ctx = { epoch, state: s, params, rank: sync.rank, worldSize: sync.worldSize, log: log.log };
          if (typeof validate === "function") await validate(ctx);
          else runValidation(validate, epoch, params, log.log);
        } finally {
          for (const t of treeLeaves(params)) t.dispose();
        }
      }
      callbacks.forEach((c, i) => {
        c.log?.(states[i], { epoch, state: s, firstStep, log: log.log });
      });
      const metrics = await log.sync(sync);
      log = new EpochLog();
      firstStep = s.opt.step;
      return metrics;
    },
    afterEpoch: async (record, s) => {
      const e: Omit<EpochEndEvent, "callbackStates" | "index"> = {
        epoch: record.epoch,
        epochs,
        step,
        metrics: { loss: record.loss, ...record.metrics },
        state: s,
        rank: sync.rank,
        worldSize: sync.worldSize,
      };
      for (const [i, c] of callbacks.entries()) {
        const r = await c.epochEnd?.(states[i], { ...e, callbackStates: [...states], index: i });
        if (!r) continue;
        states[i] = r.state;
        if (r.stop !== undefined && !stopped) stopped = { epoch: record.epoch, by: c.name, reason: r.stop };
      }
      if (stopped && sync.rank === 0 && mode !== "none") {
        (opts.logTo ?? process.stderr).write(
          `${stopped.by}: stopping after epoch ${stopped.epoch}: ${stopped.reason}\n`,
        );
      }
      return stopped !== undefined;
    },
    progress: mode,
    firstEpoch: resume.epoch + 1,
    progressTo: opts.logTo,
  });
  if (dp) await trainer.stop(state);
  return stopped ? { state, history, callbackStates: states, stopped } : { state, history, callbackStates: states };
}

function trainBatches<B>(train: FitOptions<B>["train"]): (epoch: number) => EpochBatches<B> {
  if (typeof train === "function") return train;
  if (train !== null && typeof train === "object" && typeof train.epoch === "function") return (e) => train.epoch(e);
  throw new TypeError(
    `plait: ${OP}: option train must be a DataLoader or a function (epoch) => { count, get, size }, got ${train === null ? "null" : typeof train}`,
  );
}

/**
 * A DataLoader must be sharded for this rank of this world: one that is not (most often, one
 * made without rank and worldSize) would train every rank on the same samples. Pass a function
 * `(epoch) => loader.epoch(epoch)` to shard another way.
 */
function checkShard<B>(train: FitOptions<B>["train"], comm: Comm): void {
  const b = (train as { batcher?: { rank: number; worldSize: number } }).batcher;
  if (b && (b.rank !== comm.rank || b.worldSize !== comm.worldSize)) {
    throw new RangeError(
      `plait: ${OP}: the train loader is sharded as rank ${b.rank} of ${b.worldSize}, but this is rank ${comm.rank} of ${comm.worldSize}: make it with loader(dataset, { rank, worldSize, ... }) from the rank's ctx${comm.worldSize === 1 ? " (under withDP, rank 0 takes whole batches: rank 0 of 1)" : ""}`,
    );
  }
}

function checkCallbacks(callbacks: readonly Callback<any>[]): readonly Callback<any>[] {
  if (!Array.isArray(callbacks)) throw new TypeError(`plait: ${OP}: option callbacks must be an array of callbacks`);
  for (const [i, c] of callbacks.entries()) {
    if (c === null || typeof c !== "object" || typeof c.init !== "function" || typeof c.name !== "string") {
      throw new TypeError(
        `plait: ${OP}: callbacks[${i}] is not a callback ({ name, init, log?, epochEnd? }, e.g. earlyStopping({...}))`,
      );
    }
  }
  return callbacks;
}

/** Each metric's sample-weighted mean over this rank's validation batches, logged as a mean. */
function runValidation<V>(v: ValidateLoader<V>, epoch: number, params: Tree, log: LogFn): void {
  if (v === null || typeof v !== "object" || typeof v.metrics !== "function" || typeof v.data?.epoch !== "function") {
    throw new TypeError(
      `plait: ${OP}: option validate must be a function or { data: DataLoader, metrics: (params, batch) => { name: value } }`,
    );
  }
  const e = v.data.epoch(epoch - 1);
  const sums = new Map<string, number>();
  let samples = 0;
  for (let i = 0; i < e.count; i++) {
    scope(() => {
      const batch = e.get(i);
      const n = e.size(batch, i);
      for (const [name, value] of Object.entries(v.metrics(params, batch))) {
        if (typeof value !== "number") {
          throw new TypeError(
            `plait: ${OP}: validate.metrics returned ${name}: ${value === null ? "null" : typeof value} for batch ${i}; each metric must be a number (e.g. t.toArray()[0])`,
          );
        }
        sums.set(name, (sums.get(name) ?? 0) + value * n);
      }
      samples += n;
    });
  }
  for (const [name, sum] of sums) log(name, sum / samples);
}
