import { unscaleAndCheckFinite } from "../core/cast.ts";
import { anyCuda } from "../core/device.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { type Ctx, type StepOut, stateOf, withState } from "../step/contract.ts";
import { deviceUnscaleLeaves } from "./device.ts";
import { adjustScaler, type LossScaler } from "./scaler.ts";
import { checkScaler } from "./scalerOption.ts";

/**
 * Dynamic loss scaling (torch's GradScaler loop) as the parts of a transform: the scaler lives
 * in the step state under `key` (`initial` from init); `enter` hands the inner step
 * ctx.lossScale = its scale, so it returns grads multiplied by it (gradScale); `update` unscales
 * them in one fused pass with the finite check (half grads widened to f32 on the way), takes the
 * same skip decision on every rank through ctx.comm, and adjusts the scaler. It reports
 * metrics.lossScale = the scale this step used.
 */
export interface LossScaling {
  readonly key: string;
  initState(): LossScaler;
  enter(ctx: Ctx): Ctx;
  update(out: StepOut, ctx: Ctx): Promise<StepOut>;
}

export function lossScaling(op: string, key: string, initial: LossScaler): LossScaling {
  const current = (ctx: Ctx) => {
    const s = stateOf<LossScaler>(ctx, key);
    if (s === undefined) {
      throw new Error(`plait: ${op}: ctx.state.${key} (the loss scaler) is missing: start from trainer.init(params)`);
    }
    return checkScaler(op, s, `ctx.state.${key}`);
  };
  return {
    key,
    initState: () => initial,
    enter(ctx) {
      if (ctx.lossScale !== 1) {
        throw new Error(
          `plait: ${op}: the loss is already scaled (ctx.lossScale ${ctx.lossScale}): one step takes one loss scaler, so loss-scaling transforms do not nest`,
        );
      }
      return { ...ctx, lossScale: current(ctx).scale };
    },
    async update(out, ctx) {
      const scaler = current(ctx);
      const scale = scaler.scale;
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
        skip: overflow,
        metrics: { ...out.metrics, lossScale: scale },
      };
      return withState(next, key, adjustScaler(scaler, !overflow));
    },
  };
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
  if (anyCuda(leaves)) return deviceUnscaleLeaves(leaves, def, scale); // precision/device.ts
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
