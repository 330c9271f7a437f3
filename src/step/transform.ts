import { copyTree, type Tree } from "../core/tree.ts";
import type { Ctx, Init, InitCtx, Step, StepFn, StepLike, StepOut } from "./contract.ts";

/** What a transform hands the inner step for one batch, and what to free once it has run. */
export interface Entered<B> {
  readonly params: Tree;
  readonly batch: B;
  readonly ctx: Ctx;
  /** Frees what `enter` made for this batch; runs after the inner step, also when it throws. */
  readonly release?: () => void;
}

/**
 * A transform written as its parts; `transform(inner, spec)` assembles the step. Every part is
 * optional: what is left out is the inner step's (init, gather, serve, stop) or does nothing.
 */
export interface TransformSpec<B> {
  /** The transform's name; the step is named `${name}(${inner.name})`. */
  readonly name: string;
  /** The key of this transform's state; the init refuses an inner step that already uses it. */
  readonly key?: string;
  /** This transform's initial state (put under `key`), from the params the inner init returned. */
  initState?(params: Tree, ctx: InitCtx): unknown;
  /**
   * Replaces the default init (the inner one's, then `initState`): for transforms that change
   * the params train holds (cast, broadcast, shard). `inner` is the inner step's init.
   */
  init?(params: Tree, ctx: InitCtx, inner: (params: Tree) => Promise<Init>): Promise<Init>;
  /** The params, batch and ctx the inner step gets (default: its own). */
  enter?(params: Tree, batch: B, ctx: Ctx): Entered<B> | Promise<Entered<B>>;
  /**
   * Acts on what the inner step returned, when it carries gradients to act on: skipped and
   * accumulating outputs pass through without reaching it. `ctx` is this transform's own.
   */
  update?(out: StepOut, ctx: Ctx, entered: Entered<B>): StepOut | Promise<StepOut>;
  /**
   * Replaces enter/update for transforms that run the inner step their own way (several times,
   * on some ranks only, ...): `inner` is the inner step.
   */
  run?(params: Tree, batch: B, ctx: Ctx, inner: Step<B>): Promise<StepOut>;
  /** Replaces the inner step's gather (default: the inner one's). */
  gather?: Step<B>["gather"];
  serve?: Step<B>["serve"];
  stop?: Step<B>["stop"];
}

/**
 * Builds a step from a transform's parts around `inner`: the plugin mechanism, and how every
 * built-in transform is written. It composes `init` with the inner init, passes skipped and
 * accumulating outputs through untouched, frees what `enter` made, and keeps what the inner step
 * declared (its gather, serve and stop). `inner` may be a bare step function.
 */
export function transform<B>(inner: StepLike<B>, spec: TransformSpec<B>): Step<B> {
  const s = toStep(spec.name, inner);
  const { key } = spec;
  const initInner = (params: Tree, ctx: InitCtx) => s.init(params, ctx);
  return {
    name: `${spec.name}(${s.name})`,
    async init(params, ctx) {
      const done = spec.init ? await spec.init(params, ctx, (p) => initInner(p, ctx)) : await initInner(params, ctx);
      if (key === undefined || !spec.initState) return done;
      if (key in done.state) {
        throw new Error(
          `plait: ${spec.name}: state key "${key}" is already used by a transform inside it (${s.name}); two transforms cannot share one key`,
        );
      }
      return { params: done.params, state: { ...done.state, [key]: spec.initState(done.params, ctx) } };
    },
    async run(params, batch, ctx) {
      if (spec.run) return spec.run(params, batch, ctx, s);
      const entered = spec.enter ? await spec.enter(params, batch, ctx) : { params, batch, ctx };
      try {
        const out = await s.run(entered.params, entered.batch, entered.ctx);
        if (out.skip || out.accumulating || !spec.update) return out;
        return await spec.update(out, ctx, entered);
      } finally {
        entered.release?.();
      }
    },
    gather: spec.gather ?? s.gather,
    serve: spec.serve ?? s.serve,
    stop: spec.stop ?? s.stop,
  };
}

/**
 * `s` as a Step: a Step as it is (checked to have init, run and gather), a bare per-batch
 * function as a step whose init keeps the params as given and whose gather copies them.
 */
export function toStep<B>(op: string, s: StepLike<B>): Step<B> {
  if (typeof s === "function") return fromFunction(s);
  const o = s as Partial<Step<B>> | null;
  if (o !== null && typeof o === "object") {
    const missing = (["init", "run", "gather"] as const).filter((m) => typeof o[m] !== "function");
    if (missing.length === 0) return o as Step<B>;
    throw new TypeError(
      `plait: ${op}: argument step is an object without ${missing.join(", ")}: pass a step (from valueAndGrad, a with* transform or transform()) or a function (params, batch, ctx) → StepOut`,
    );
  }
  throw new TypeError(
    `plait: ${op}: argument step must be a step (from valueAndGrad, a with* transform or transform()) or a function (params, batch, ctx) → StepOut, got ${o === null ? "null" : typeof o}`,
  );
}

function fromFunction<B>(fn: StepFn<B>): Step<B> {
  return {
    name: fn.name || "step",
    init: async (params) => ({ params, state: {} }),
    run: async (params, batch, ctx) => fn(params, batch, ctx),
    gather: async (params) => copyTree(params),
  };
}
