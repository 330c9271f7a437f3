import { localComm } from "../comm/local.ts";
import type { Comm } from "../comm/types.ts";
import { checkOptions } from "../core/options.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import { checkTreeLike } from "../core/treeCheck.ts";
import type { Optimizer, OptState } from "../optim/types.ts";
import type { Ctx, InitCtx, Step, StepLike, StepOut } from "./contract.ts";
import { toStep } from "./transform.ts";

/** Everything a training run carries from step to step; `save` it and `restore` it to resume bit for bit. */
export interface TrainState {
  /** The params train holds: the full tree, or this rank's shards under withZeRO / withFSDP. */
  readonly params: Tree;
  readonly opt: OptState;
  /** Each transform's state under its key (loss scaler, accumulation window, shard layout, ...). */
  readonly transforms: Readonly<Record<string, unknown>>;
}

export interface Trainer<B> {
  /** One batch: runs the step, then the optimizer unless the step skipped or is accumulating. */
  (state: TrainState, batch: B): Promise<{ state: TrainState; out: StepOut }>;
  /** Runs the step's init chain on every rank (cast, broadcast, shard) and makes the optimizer's state. */
  init(params: Tree): Promise<TrainState>;
  /** The full params, as new tensors, under any strategy (every rank calls it). */
  gather(state: TrainState): Promise<Tree>;
  /**
   * The state to continue from a checkpoint: `loaded` (what `load` returned for a saved
   * TrainState) checked against what `init(template)` gives (the structure, shapes and dtypes
   * of the params or shards, the optimizer slots and every transform's tensors; `template`'s
   * values are not kept). Works the same under every strategy and precision.
   */
  restore(template: Tree, loaded: TrainState): Promise<TrainState>;
  /** withDP's ranks other than 0: serve rank 0's steps until it calls `stop`. */
  serve(state: TrainState): Promise<void>;
  /** withDP's rank 0, after training: ends the other ranks' `serve`. */
  stop(state: TrainState): Promise<void>;
  /** The composed step. */
  readonly step: Step<B>;
}

export interface TrainOptions {
  /** The communicator handed to the step; default a world of one. */
  comm?: Comm;
}

const OP = "train";

/**
 * Turns a (composed) step and an optimizer into a trainer: `await t.init(params)` once, then
 * `(state, batch) → { state, out }` per batch. The optimizer runs only when the step neither
 * skips (overflow) nor is still accumulating, so a skipped step changes no parameter and no
 * optimizer moment, and the optimizer's step count (which drives the LR schedule) ticks only on
 * real updates. The grads a step returns are freed here once applied.
 */
export function train<B>(stepLike: StepLike<B>, optimizer: Optimizer, opts?: TrainOptions): Trainer<B> {
  const step = toStep(OP, stepLike);
  const { comm = localComm() } = checkOptions(OP, opts, ["comm"]);
  const world: InitCtx = { rank: comm.rank, worldSize: comm.worldSize, comm };
  const ctxOf = (state: TrainState): Ctx => ({
    ...world,
    lossScale: 1,
    computeDType: treeLeaves(state.params)[0]?.dtype ?? "f32",
    state: state.transforms,
  });

  const trainer = async (state: TrainState, batch: B) => {
    checkState(state);
    const out = await step.run(state.params, batch, ctxOf(state));
    let opt = state.opt;
    try {
      if (!out.skip && !out.accumulating) {
        const scale = out.gradScale ?? 1;
        if (scale !== 1) {
          throw new Error(
            `plait: train: the step returned gradients still multiplied by ${scale} (the loss scale): a precision transform must unscale them before the optimizer sees them`,
          );
        }
        opt = optimizer.update(state.params, out.grads, state.opt);
      }
    } finally {
      for (const g of treeLeaves(out.grads)) g.dispose();
    }
    const next: TrainState = { params: state.params, opt, transforms: { ...state.transforms, ...out.state } };
    return { state: next, out };
  };

  const init = async (params: Tree): Promise<TrainState> => {
    const done = await step.init(params, world);
    return { params: done.params, opt: optimizer.init(done.params), transforms: done.state };
  };

  return Object.assign(trainer, {
    step,
    init,
    gather: (state: TrainState) => {
      checkState(state);
      return step.gather(state.params, { ...world, state: state.transforms });
    },
    async restore(template: Tree, loaded: TrainState): Promise<TrainState> {
      checkState(loaded, "loaded");
      const fresh = await init(template);
      try {
        checkTreeLike("train.restore", "loaded.params", loaded.params, fresh.params);
        if (loaded.opt?.kind !== fresh.opt.kind) {
          throw new TypeError(
            `plait: train.restore: loaded.opt is the state of ${JSON.stringify(loaded.opt?.kind)}, this trainer's optimizer is ${fresh.opt.kind}`,
          );
        }
        checkTreeLike("train.restore", "loaded.opt.slots", loaded.opt.slots as Tree, fresh.opt.slots as Tree);
        checkTransforms(loaded.transforms, fresh.transforms);
      } finally {
        // what init made (cast or sharded copies, optimizer slots); the template's own tensors stay
        const mine = new Set(treeLeaves(template));
        for (const t of [...treeLeaves(fresh.params), ...tensorsIn(fresh.opt.slots), ...tensorsIn(fresh.transforms)]) {
          if (!mine.has(t) && !t.disposed) t.dispose();
        }
      }
      return { params: loaded.params, opt: loaded.opt, transforms: loaded.transforms };
    },
    async serve(state: TrainState): Promise<void> {
      checkState(state);
      if (!step.serve) {
        throw new Error(
          `plait: train: serve(): ${step.name} has no serving ranks (only withDP's ranks other than 0 serve)`,
        );
      }
      await step.serve(ctxOf(state));
    },
    async stop(state: TrainState): Promise<void> {
      checkState(state);
      if (!step.stop)
        throw new Error(`plait: train: stop(): ${step.name} has no serving ranks to stop (only withDP has)`);
      await step.stop(world);
    },
  });
}

function checkState(state: TrainState, what = "state"): void {
  const s = state as Partial<TrainState> | null;
  if (s === null || typeof s !== "object" || s.params === undefined || s.opt === undefined || !s.transforms) {
    throw new TypeError(
      `plait: train: ${what} must be a TrainState { params, opt, transforms } (from await trainer.init(params) or trainer.restore), got ${s === null || typeof s !== "object" ? String(s) : `an object with keys [${Object.keys(s).join(", ")}]`}`,
    );
  }
}

/**
 * The transforms' states must have the same keys, and tensors of the same shapes and dtypes, as a
 * fresh init's, except where the fresh state holds null or nothing: there a transform keeps what
 * it makes as it runs (withAccumulation's running sums of a window), which a checkpoint taken
 * mid-way holds and a fresh init cannot describe.
 */
function checkTransforms(loaded: Readonly<Record<string, unknown>>, fresh: Readonly<Record<string, unknown>>): void {
  const a = Object.keys(loaded).sort();
  const b = Object.keys(fresh).sort();
  if (a.join() !== b.join()) {
    throw new TypeError(
      `plait: train.restore: loaded.transforms has the states [${a.join(", ")}], this step's transforms keep [${b.join(", ")}]`,
    );
  }
  for (const k of b) {
    const have = tensorsLike(loaded[k], fresh[k]);
    const want = tensorsIn(fresh[k]);
    const desc = (ts: Tensor[]) => ts.map((t) => t.describe()).join(", ");
    if (desc(have) !== desc(want)) {
      throw new TypeError(
        `plait: train.restore: loaded.transforms.${k} holds tensors [${desc(have)}], expected [${desc(want)}]`,
      );
    }
  }
}

/** The tensors inside `v` (as tensorsIn), leaving out those where `like` holds null or nothing (a missing key). */
function tensorsLike(v: unknown, like: unknown, out: Tensor[] = []): Tensor[] {
  if (like === null || like === undefined) return out;
  if (v instanceof Tensor) out.push(v);
  else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) tensorsLike(x, Array.isArray(like) && i < like.length ? like[i] : like, out);
  } else if (v !== null && typeof v === "object") {
    const byKey = typeof like === "object" && !Array.isArray(like) && !(like instanceof Tensor);
    for (const k of Object.keys(v).sort()) tensorsLike((v as never)[k], byKey ? (like as never)[k] : like, out);
  }
  return out;
}

/** The tensors anywhere inside a value (arrays and plain objects), in key order. */
const tensorsIn = (v: unknown): Tensor[] => tensorsLike(v, v);
