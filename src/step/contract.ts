import type { Comm } from "../comm/types.ts";
import type { DType } from "../core/dtype.ts";
import type { Tree } from "../core/tree.ts";

/** What a step's `init` (and `gather`, `serve`, `stop`) is given: the world it runs in. */
export interface InitCtx {
  readonly rank: number;
  readonly worldSize: number;
  readonly comm: Comm;
}

/**
 * What outer transforms hand to inner ones each batch. A world-size-1 `comm` stands in when
 * nothing distributes, so a transform never branches on "is this distributed".
 */
export interface Ctx extends InitCtx {
  /** The backward pass is seeded with this (1 unless a precision transform scales the loss). */
  readonly lossScale: number;
  /** The dtype the params arrive in. */
  readonly computeDType: DType;
  /** Every transform's state, under its key: what the inits made, then what each step returned (StepOut.state). */
  readonly state: Readonly<Record<string, unknown>>;
  /** Set by withAccumulation for the steps inside it: which micro-batch of how many this is. */
  readonly microBatch?: { readonly index: number; readonly of: number };
  /** Set by a strategy that distributes (withDDP, withZeRO, ...) for the steps inside it: its name. */
  readonly distributedBy?: string;
}

export interface StepOut {
  /** The unscaled loss of this (micro-)batch. */
  loss: number;
  /** Gradients with the structure of the params the step was given, owned by the caller. */
  grads: Tree;
  /**
   * The factor the grads are still multiplied by (the loss scale, until withAMP unscales them;
   * default 1). Transforms that read gradient magnitudes (clipping, norms) divide by it, and
   * `train` refuses to apply grads whose scale is not 1: clipping or applying still-scaled
   * gradients cannot happen by accident.
   */
  gradScale?: number;
  /** The optimizer must not apply these grads (overflow): params and optimizer state stay as they are. */
  skip?: boolean;
  /**
   * An accumulation window is still filling: `grads` is empty ([]) and outer transforms pass
   * the output through (no communication, no unscaling, no clipping, no optimizer step).
   */
  accumulating?: boolean;
  /**
   * Each rank holds a different part of the gradient (ZeRO-2/3, FSDP shards): a global norm or
   * finite check must combine all ranks' values through ctx.comm. Unset: every rank holds the
   * whole (already reduced) gradient.
   */
  shardedGrads?: boolean;
  metrics?: Record<string, number>;
  /** Transforms' new states under their keys; `train` keeps them for the next step's ctx.state. */
  state?: Record<string, unknown>;
}

/** What a step's `init` returns: the params `train` holds, and every transform's initial state by key. */
export interface Init {
  readonly params: Tree;
  readonly state: Readonly<Record<string, unknown>>;
}

/** The per-batch function of a step. A bare function of this type is a step too (see Step). */
export type StepFn<B> = (params: Tree, batch: B, ctx: Ctx) => Promise<StepOut> | StepOut;

/**
 * A training step: the unit every strategy and precision transform wraps (optax's
 * `(init, update)` pair). Built-in transforms are `(inner, opts) → Step`; a bare StepFn (such
 * as `valueAndGrad(loss)`) is accepted wherever a step is, as a step whose init keeps the params.
 * Nothing about a step lives outside these values: what lasts between batches is in what `init`
 * returns and what `run` returns in `StepOut.state`, both held by `train`.
 */
export interface Step<B> {
  /** How the step was composed, for messages: "withDDP(withAMP(step))". */
  readonly name: string;
  /**
   * Runs once, on every rank, before the first batch (train's `init`): turns the params the user
   * gave into the ones `train` holds (cast, checked and broadcast from rank 0, sharded) and makes
   * each transform's initial state. Composes with the inner step's init.
   */
  init(params: Tree, ctx: InitCtx): Promise<Init>;
  /** One batch: the loss and the gradients with respect to the params `train` holds. */
  run(params: Tree, batch: B, ctx: Ctx): Promise<StepOut>;
  /** The full params from the ones `train` holds (all-gathered under ZeRO/FSDP; every rank calls it), as new tensors. */
  gather(params: Tree, ctx: InitCtx & { readonly state: Readonly<Record<string, unknown>> }): Promise<Tree>;
  /** withDP's ranks other than 0: run their slice of each batch rank 0 steps on, until rank 0 calls `stop`. */
  serve?(ctx: Ctx): Promise<void>;
  /** withDP's rank 0, after training: ends the other ranks' `serve`. */
  stop?(ctx: InitCtx): Promise<void>;
}

/** A Step, or a bare per-batch function (a step whose init keeps the params as given). */
export type StepLike<B> = Step<B> | StepFn<B>;

/** Reads a transform's state from ctx (undefined when no init made it). */
export function stateOf<S>(ctx: Ctx, key: string): S | undefined {
  return ctx.state[key] as S | undefined;
}

/** `out` with `key`'s state set to `value` (other transforms' states kept). */
export function withState(out: StepOut, key: string, value: unknown): StepOut {
  return { ...out, state: { ...out.state, [key]: value } };
}
