import { HalfCopy, type HalfDType } from "../core/castInto.ts";
import { isCuda } from "../core/device.ts";
import { isFloat } from "../core/dtype.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeFlatten, treeUnflatten } from "../core/tree.ts";
import { deviceHalfCopy } from "./device.ts";
import type { CastPolicy } from "./policy.ts";

/**
 * The params one step computes with: `masters` with each leaf the policy picks replaced by a
 * new half copy (a HalfCopy: one cast pass per weight when first read, none when only products on
 * the system BLAS read it), and a `release` that frees the copies after the step. Nothing is
 * kept between steps, so the copies can never go stale or outlive their masters.
 */
export function computeCopies(
  op: string,
  masters: Tree,
  dtype: HalfDType,
  policy: CastPolicy,
): { tree: Tree; release: () => void } {
  const { leaves, def } = treeFlatten(masters);
  const made: Tensor[] = [];
  try {
    const compute = leaves.map((leaf, i) => {
      if (isFloat(leaf.dtype) && leaf.dtype !== "f32") {
        throw new TypeError(
          `plait: ${op}: params leaf ${i} is ${leaf.describe()}; the master params must be f32 (its init casts them; start from trainer.init)`,
        );
      }
      if (!policy(leaf)) return leaf;
      if (isCuda(leaf)) {
        const copy = deviceHalfCopy(leaf, dtype); // precision/device.ts: cast on the device
        made.push(copy);
        return copy;
      }
      const copy = new HalfCopy(leaf, dtype); // cast when first read (a product on the BLAS rounds the master instead)
      made.push(copy);
      return copy;
    });
    return {
      tree: treeUnflatten(def, compute),
      release: () => {
        for (const t of made) t.dispose();
      },
    };
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}
