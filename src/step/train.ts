import { localComm } from "../comm/local.ts";
import type { Comm } from "../comm/types.ts";
import { cast } from "../core/cast.ts";
import { type Tree, treeLeaves, treeMap } from "../core/tree.ts";
import type { Optimizer, OptState } from "../optim/types.ts";
import type { Ctx, Step, StepOut } from "./contract.ts";
import { paramDTypeOf } from "./paramDType.ts";

/** Everything a training run carries from step to step; save it to resume bit for bit. */
export interface TrainState {
  /** The parameters (same pytree as given to init; updated in place by the optimizer). */
  readonly params: Tree;
  readonly opt: OptState;
  /** Each transform's state under its key (loss scaler, accumulation window, ...). */
  readonly transforms: Readonly<Record<string, unknown>>;
}

export interface Trainer<B> {
  (state: TrainState, batch: B): Promise<{ state: TrainState; out: StepOut }>;
  init(params: Tree): TrainState;
}

export interface TrainOptions {
  /** The communicator handed to the step; default a world of one. */
  comm?: Comm;
}

/**
 * Turns a (composed) step and an optimizer into `(state, batch) → { state, out }`. The
 * optimizer runs only when the step neither skips (overflow) nor is still accumulating, so a
 * skipped step changes no parameter and no optimizer moment, and the optimizer's step count
 * (which drives the LR schedule) ticks only on real updates. The grads a step returns are
 * freed here once applied.
 */
export function train<B>(step: Step<B>, optimizer: Optimizer, opts: TrainOptions = {}): Trainer<B> {
  const comm = opts.comm ?? localComm();
  const trainer = async (state: TrainState, batch: B) => {
    const leaves = treeLeaves(state.params);
    const ctx: Ctx = {
      rank: comm.rank,
      worldSize: comm.worldSize,
      comm,
      lossScale: 1,
      computeDType: leaves[0]?.dtype ?? "f32",
      state: state.transforms,
    };
    const out = await step(state.params, batch, ctx);
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
  // A step that asks for a param dtype (withPrecision) gets its params held in it: init casts
  // the given params into new tensors of that dtype (leaves already in it are kept as they are).
  const paramDType = paramDTypeOf(step);
  return Object.assign(trainer, {
    init: (given: Tree): TrainState => {
      const params =
        paramDType === undefined ? given : treeMap((p) => (p.dtype === paramDType ? p : cast(p, paramDType)), given);
      return { params, opt: optimizer.init(params), transforms: {} };
    },
  });
}
