import { unscaleAndCheckFinite } from "../core/cast.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { type Ctx, type Step, type StepOut, stateOf, withState } from "../step/contract.ts";
import { wrapStep } from "../step/paramDType.ts";
import { adjustScaler, type LossScaler } from "./scaler.ts";
import { checkScaler } from "./scalerOption.ts";

/**
 * Dynamic loss scaling around `step` (torch's GradScaler loop as a transform): the scaler lives
 * in the step state under `key` (`initial` on the first step); the inner step gets
 * ctx.lossScale = its scale and returns grads multiplied by it (gradScale); those are unscaled
 * in one fused pass with the finite check (half grads widened to f32 on the way), every rank
 * takes the same skip decision through ctx.comm, and the scaler is adjusted. Reports
 * metrics.lossScale = the scale this step used. An accumulating step passes through untouched.
 */
export function withLossScaling<B>(step: Step<B>, op: string, key: string, initial: LossScaler): Step<B> {
  return wrapStep(step, async (params, batch, ctx) => {
    if (ctx.lossScale !== 1) {
      throw new Error(
        `plait: ${op}: the loss is already scaled (ctx.lossScale ${ctx.lossScale}): one step takes one loss scaler, so loss-scaling transforms do not nest`,
      );
    }
    const scaler = checkScaler(op, stateOf<LossScaler>(ctx, key) ?? initial, `ctx.state.${key}`);
    const scale = scaler.scale;
    const out = await step(params, batch, { ...ctx, lossScale: scale });
    if (out.accumulating) return out;
    const inner = out.gradScale ?? 1;
    if (inner !== scale && inner !== 1) {
      throw new Error(
        `plait: ${op}: the inner step returned gradScale ${inner}, expected ${scale} (the loss scale it was given) or 1 (unscaled)`,
      );
    }
    // Grads already unscaled (gradScale 1) are not unscaled again: the pass only checks them.
    const { grads, finite } = unscaleLeaves(out.grads, inner);
    const overflow = await overflowOnAnyRank(ctx, finite);
    const next: StepOut = {
      ...out,
      grads,
      gradScale: 1,
      skip: out.skip === true || overflow,
      metrics: { ...out.metrics, lossScale: scale },
    };
    return withState(next, key, adjustScaler(scaler, !overflow));
  });
}

/**
 * Unscales `out.grads` (which are multiplied by out.gradScale) with inv = f32(1/f64(scale)), in
 * one pass per leaf that also checks every element is finite; f16/bf16 grads are widened into
 * new f32 tensors on the way (the half ones are freed). Grads that are already unscaled
 * (gradScale 1 or unset) are refused: unscaling them again would divide by the scale twice.
 */
export function unscale(out: StepOut): { out: StepOut; finite: boolean } {
  const scale = out.gradScale ?? 1;
  if (scale === 1) {
    throw new Error(
      "plait: unscale: the gradients are already unscaled (gradScale 1); unscaling them again would divide by the loss scale twice",
    );
  }
  const { grads, finite } = unscaleLeaves(out.grads, scale);
  return { out: { ...out, grads, gradScale: 1 }, finite };
}

function unscaleLeaves(tree: Tree, scale: number): { grads: Tree; finite: boolean } {
  const { leaves, def } = treeFlatten(tree);
  let finite = true;
  const out = leaves.map((g) => {
    if (g.dtype === "f32") {
      finite = unscaleAndCheckFinite(g, scale) && finite;
      return g;
    }
    const wide = new Tensor(g.shape, "f32");
    finite = unscaleAndCheckFinite(g, scale, wide) && finite;
    g.dispose();
    return wide;
  });
  return { grads: treeUnflatten(def, out), finite };
}

/** The global skip decision: the max over ranks of a 1-element overflow flag. */
async function overflowOnAnyRank(ctx: Ctx, finite: boolean): Promise<boolean> {
  const flag = new Tensor([1], "f32");
  try {
    flag.data()[0] = finite ? 0 : 1;
    await ctx.comm.allReduce(flag, "max");
    return flag.data()[0] !== 0;
  } finally {
    flag.dispose();
  }
}
