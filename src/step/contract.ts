import type { Comm } from "../comm/types.ts";
import type { DType } from "../core/dtype.ts";
import type { Tree } from "../core/tree.ts";

/**
 * What outer transforms hand to inner ones. A world-size-1 `comm` stands in when nothing
 * distributes, so a transform never branches on "is this distributed".
 */
export interface Ctx {
  readonly rank: number;
  readonly worldSize: number;
  readonly comm: Comm;
  /** The backward pass is seeded with this (1 unless a precision transform scales the loss). */
  readonly lossScale: number;
  /** The dtype the params arrive in. */
  readonly computeDType: DType;
  /** Each transform's state from the previous step, under its key (see StepOut.state). */
  readonly state: Readonly<Record<string, unknown>>;
  /** Set by withAccumulation for the steps inside it: which micro-batch of how many this is. */
  readonly microBatch?: { readonly index: number; readonly of: number };
  /** Set by a strategy that distributes (withDDP, withZeRO, ...) for the steps inside it: its name. */
  readonly distributedBy?: string;
  /**
   * Set by a precision transform that hands the steps inside it compute copies of its params
   * (withAMP's half copies, withPrecision's with master weights): its name. The copies are recast
   * from the masters every step, so writing into them changes nothing that lasts.
   */
  readonly paramsCopiedBy?: string;
}

export interface StepOut {
  /** The unscaled loss of this (micro-)batch. */
  loss: number;
  /** Gradients with the params' structure, owned by the caller. */
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
  /** Each transform's new state under its key; `train` threads it into the next step's ctx.state. */
  state?: Record<string, unknown>;
}

/** A training step: the unit every strategy and precision transform wraps. */
export type Step<B> = (params: Tree, batch: B, ctx: Ctx) => Promise<StepOut> | StepOut;

/**
 * A transform is a plain function from step to step (plus options): the plugin mechanism. Users
 * write their own with these same types.
 */
export type Transform<O = Record<string, never>> = <B>(step: Step<B>, opts?: O) => Step<B>;

/** Reads this transform's state from ctx (undefined on the first step). */
export function stateOf<S>(ctx: Ctx, key: string): S | undefined {
  return ctx.state[key] as S | undefined;
}

/** `out` with `key`'s state set to `value` (other transforms' states kept). */
export function withState(out: StepOut, key: string, value: unknown): StepOut {
  return { ...out, state: { ...out.state, [key]: value } };
}
