// The precision transforms on a CUDA device: half compute copies cast there (cast.cu), and the
// loss scaler's unscale fused with the finite check (unscale.cu) over every gradient of the step
// with one flag, read once. Called from computeCopies.ts and lossScaling.ts with one-line branches.
import { deviceKernels } from "../../ffi/cuda/dispatch.ts";
import type { HalfDType } from "../core/castInto.ts";
import { CudaTensor } from "../core/device.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, type TreeDef, treeUnflatten } from "../core/tree.ts";

/** A half copy of f32 device master `leaf` (a new tensor on its device). */
export function deviceHalfCopy(leaf: Tensor, dtype: HalfDType): Tensor {
  return deviceKernels().cast(leaf as unknown as CudaTensor, dtype) as unknown as Tensor;
}

/**
 * lossScaling's unscale on device grads: g · f32(1/f64(scale)) in place for f32 grads, into a new
 * f32 tensor for half ones (the half grad freed), every element checked in the same pass; the
 * step's one flag is read back once. Every leaf must be on one device.
 */
export function deviceUnscaleLeaves(
  leaves: readonly Tensor[],
  def: TreeDef,
  scale: number,
): { grads: Tree; finite: boolean } {
  const grads = leaves as unknown as CudaTensor[];
  const first = grads.find((g) => g instanceof CudaTensor)!;
  for (const [i, g] of grads.entries()) {
    if (!(g instanceof CudaTensor) || g.device !== first.device) {
      throw new TypeError(
        `plait: unscale: grads leaf ${i} is on ${g instanceof CudaTensor ? g.device : "cpu"}, but another is on ${first.device}: the grads of one step must be on one device`,
      );
    }
  }
  const k = deviceKernels();
  const inv = Math.fround(1 / scale);
  const { flag, allFinite } = k.finiteFlag(first.deviceIndex);
  try {
    const out = grads.map((g) => {
      if (g.dtype === "f32") {
        k.unscale(g, g, inv, flag);
        return g;
      }
      const wide = new CudaTensor(g.shape, "f32", g.deviceIndex);
      k.unscale(g, wide, inv, flag);
      g.dispose();
      return wide;
    });
    return { grads: treeUnflatten(def, out as unknown as Tensor[]), finite: allFinite() };
  } finally {
    flag.dispose();
  }
}
