import type { Tree } from "../core/tree.ts";

/** A learning rate as a function of the optimizer's step count (0 on the first update). */
export type Schedule = (step: number) => number;

/** A fixed learning rate, or a schedule. */
export type LearningRate = number | Schedule;

export type OptimizerKind = "sgd" | "adam" | "adamw";

/**
 * An optimizer's state between updates: plain values plus trees of tensors, so a checkpoint
 * can write `{ kind, step, hyper }` as JSON and each slot tree as tensors.
 */
export interface OptState {
  /** Which optimizer made this state; `update` refuses a state of another kind. */
  readonly kind: OptimizerKind;
  /** Real updates applied so far. The schedule and Adam's bias correction count from it. */
  readonly step: number;
  /** The hyperparameters, for checkpoints and logs (`lr` is "schedule" when it is a function). */
  readonly hyper: Readonly<Record<string, number | boolean | string>>;
  /**
   * Per-parameter tensors, each a tree shaped like the params: `{ momentum }` for SGD with
   * momentum (none without), `{ m, v }` for Adam and AdamW (torch's exp_avg, exp_avg_sq).
   */
  readonly slots: Readonly<Record<string, Tree>>;
}

/**
 * An optimizer as a pair of functions over explicit state (optax's GradientTransformation,
 * with the parameter update applied in place).
 */
export interface Optimizer {
  /** Zeroed slots shaped like `params`, step 0. */
  init(params: Tree): OptState;
  /**
   * Updates `params` in place from `grads` (one fused kernel per leaf) and returns the next
   * state: a new object with `step + 1`. Its slot tensors are the same tensors as in `state`,
   * updated in place, so `state` is not a snapshot: checkpoint it before updating if you need it.
   */
  update(params: Tree, grads: Tree, state: OptState): OptState;
}
