import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { isHalf, toDType } from "../ops/castInto.ts";
import type { Step } from "../step/contract.ts";
import { wrapStep } from "../step/paramDType.ts";

// The last stage of a precision transform without a loss scaler: gradients handed back in the
// dtype the optimizer expects. valueAndGrad already gives f32 grads for half leaves, so for it
// these are a dtype scan; a custom step that returns half grads gets them cast here.

/** `step` with any f16/bf16 gradient widened (exactly) to f32: mixed precision's f32 grads. */
export function gradsInF32<B>(step: Step<B>): Step<B> {
  return wrapStep(step, async (params, batch, ctx) => {
    const out = await step(params, batch, ctx);
    if (out.accumulating) return out;
    return { ...out, grads: mapLeaves(out.grads, (g) => (isHalf(g.dtype) ? "f32" : g.dtype)) };
  });
}

/** `step` with each gradient cast to its param's dtype (rounded to nearest even): true precision. */
export function gradsLikeParams<B>(step: Step<B>): Step<B> {
  return wrapStep(step, async (params, batch, ctx) => {
    const out = await step(params, batch, ctx);
    if (out.accumulating) return out;
    const dtypes = treeFlatten(params).leaves.map((p) => p.dtype);
    const count = treeFlatten(out.grads).leaves.length;
    if (count !== dtypes.length) {
      throw new TypeError(`plait: withPrecision: the step returned ${count} gradients for ${dtypes.length} params`);
    }
    let i = 0;
    return { ...out, grads: mapLeaves(out.grads, () => dtypes[i++]) };
  });
}

/** The tree with each leaf cast to dtypeOf(leaf) (a new tensor, the old one freed) where it differs. */
function mapLeaves(tree: Tree, dtypeOf: (g: Tensor) => Tensor["dtype"]): Tree {
  const { leaves, def } = treeFlatten(tree);
  return treeUnflatten(
    def,
    leaves.map((g) => {
      const cast = toDType(g, dtypeOf(g));
      if (cast !== g) g.dispose();
      return cast;
    }),
  );
}
