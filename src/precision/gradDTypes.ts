import { isHalf, toDType } from "../core/castInto.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import type { StepOut } from "../step/contract.ts";

// The last stage of a precision transform without a loss scaler: gradients handed back in the
// dtype the optimizer expects. valueAndGrad already gives f32 grads for half leaves, so for it
// these are a dtype scan; a custom step that returns half grads gets them cast here.

/** `out` with any f16/bf16 gradient widened (exactly) to f32: mixed precision's f32 grads. */
export function gradsInF32(out: StepOut): StepOut {
  return { ...out, grads: mapLeaves(out.grads, (g) => (isHalf(g.dtype) ? "f32" : g.dtype)) };
}

/** `out` with each gradient cast to its param's dtype (rounded to nearest even): true precision. */
export function gradsLikeParams(out: StepOut, params: Tree): StepOut {
  const dtypes = treeFlatten(params).leaves.map((p) => p.dtype);
  const count = treeFlatten(out.grads).leaves.length;
  if (count !== dtypes.length) {
    throw new TypeError(`plait: withPrecision: the step returned ${count} gradients for ${dtypes.length} params`);
  }
  let i = 0;
  return { ...out, grads: mapLeaves(out.grads, () => dtypes[i++]) };
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
