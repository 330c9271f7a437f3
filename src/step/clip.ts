import { scale } from "../core/arith.ts";
import { clamp } from "../core/clamp.ts";
import { isCuda } from "../core/device.ts";
import { checkOptions } from "../core/options.ts";
import { maxAbs, sumSquares } from "../core/reduce.ts";
import { tensor } from "../core/tensor.ts";
import { treeLeaves } from "../core/tree.ts";
import type { Ctx, Step, StepLike, StepOut } from "./contract.ts";
import { deviceScaleInPlace, deviceSumSquares } from "./device.ts";
import { transform } from "./transform.ts";

export type ClipOptions = { maxNorm: number; normType?: 2 | "inf" } | { value: number };

/**
 * Clips gradients, as torch's clip_grad_norm_ / clip_grad_value_ do, on their true (unscaled)
 * values: grads that still carry a loss scale (`out.gradScale`) are measured and clipped in
 * scaled units, so `withAMP(withGradClip(s))` and `withGradClip(withAMP(s))` give the same
 * bits (the scale is a power of two). The norm is global: over every leaf, and over ranks
 * when the grads are sharded. Reports `metrics.gradNorm` (the norm before clipping).
 * Skipped and accumulating steps pass through. It refuses to run inside withAccumulation
 * (clipping each micro-batch is not clipping the accumulated gradient) and inside a strategy
 * that distributes (there each rank holds its own unreduced gradients).
 */
export function withGradClip<B>(step: StepLike<B>, opts: ClipOptions): Step<B> {
  const clip = checkClipOptions(opts);
  return transform(step, {
    name: "withGradClip",
    enter(params, batch, ctx) {
      if (ctx.microBatch) {
        throw new Error(
          "plait: withGradClip inside withAccumulation would clip each micro-batch; wrap it outside: withGradClip(withAccumulation(step, k), ...)",
        );
      }
      if (ctx.distributedBy) {
        throw new Error(
          `plait: withGradClip inside ${ctx.distributedBy} would clip each rank's own gradients before they are combined; wrap it outside: withGradClip(${ctx.distributedBy}(step), ...)`,
        );
      }
      return { params, batch, ctx };
    },
    async update(out, ctx) {
      const s = out.gradScale ?? 1;
      if (clip.kind === "value") {
        for (const g of treeLeaves(out.grads)) clamp(g, -clip.value * s, clip.value * s, g);
        return out;
      }
      const norm = (await globalNorm(out, ctx, clip.normType)) / s;
      // torch: coef = maxNorm / (norm + 1e-6), applied only when it is below 1
      const coef = clip.maxNorm / (norm + 1e-6);
      if (coef < 1) for (const g of treeLeaves(out.grads)) isCuda(g) ? deviceScaleInPlace(g, coef) : scale(g, coef, g); // step/device.ts
      return { ...out, metrics: { ...out.metrics, gradNorm: norm } };
    },
  });
}

type Clip = { kind: "norm"; maxNorm: number; normType: 2 | "inf" } | { kind: "value"; value: number };

function checkClipOptions(opts: ClipOptions): Clip {
  const o = opts as Record<string, unknown>;
  if (o === null || typeof o !== "object")
    throw new TypeError(`plait: withGradClip: options must be an object, got ${String(o)}`);
  checkOptions("withGradClip", o, ["maxNorm", "normType", "value"]);
  const hasNorm = o.maxNorm !== undefined;
  const hasValue = o.value !== undefined;
  if (hasNorm === hasValue) {
    throw new TypeError(
      `plait: withGradClip: give exactly one of { maxNorm } (clip by norm) or { value } (clip by value), got ${JSON.stringify(o)}`,
    );
  }
  if (hasValue) {
    if (o.normType !== undefined)
      throw new TypeError("plait: withGradClip: normType applies to { maxNorm }, not { value }");
    const value = o.value as number;
    if (!(typeof value === "number" && value > 0 && Number.isFinite(value))) {
      throw new RangeError(`plait: withGradClip: value must be a finite number > 0, got ${String(value)}`);
    }
    return { kind: "value", value };
  }
  const maxNorm = o.maxNorm as number;
  if (!(typeof maxNorm === "number" && maxNorm > 0 && Number.isFinite(maxNorm))) {
    throw new RangeError(`plait: withGradClip: maxNorm must be a finite number > 0, got ${String(maxNorm)}`);
  }
  const normType = o.normType ?? 2;
  if (normType !== 2 && normType !== "inf") {
    throw new RangeError(`plait: withGradClip: normType must be 2 or "inf", got ${JSON.stringify(normType)}`);
  }
  return { kind: "norm", maxNorm, normType };
}

/** The 2-norm (or max-norm) over all leaves, in the grads' own (possibly scaled) units. */
async function globalNorm(out: StepOut, ctx: Ctx, normType: 2 | "inf"): Promise<number> {
  const leaves = treeLeaves(out.grads);
  let acc = 0;
  for (const g of leaves)
    acc = normType === 2 ? acc + (isCuda(g) ? deviceSumSquares(g) : sumSquares(g)) : Math.max(acc, maxAbs(g)); // step/device.ts
  if (out.shardedGrads && ctx.worldSize > 1) {
    const t = tensor([acc], [1], { dtype: "f64" });
    await ctx.comm.allReduce(t, normType === 2 ? "sum" : "max");
    acc = t.toArray()[0];
    t.dispose();
  }
  return normType === 2 ? Math.sqrt(acc) : acc;
}
