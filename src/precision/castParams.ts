import { cast } from "../core/cast.ts";
import { type DType, isFloat } from "../core/dtype.ts";
import { type Tree, treeLeaves, treeMap } from "../core/tree.ts";
import type { Init } from "../step/contract.ts";

/**
 * A precision transform's init: the float leaves of `params` cast to `dtype` (new tensors; leaves
 * already in it are kept as they are), handed to the inner init. Copies the inner init does not
 * keep (it shards them, say) are freed.
 */
export async function castParams(params: Tree, dtype: DType, inner: (params: Tree) => Promise<Init>): Promise<Init> {
  const given = new Set(treeLeaves(params));
  const cast_ = treeMap((p) => (isFloat(p.dtype) && p.dtype !== dtype ? cast(p, dtype) : p), params);
  const made = treeLeaves(cast_).filter((t) => !given.has(t));
  let done: Init | undefined;
  try {
    done = await inner(cast_);
    return done;
  } finally {
    const kept = new Set(done ? treeLeaves(done.params) : []);
    for (const t of made) if (!kept.has(t)) t.dispose();
  }
}
