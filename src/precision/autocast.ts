import { type HalfDType, isHalf } from "../core/castInto.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves, treeMap } from "../core/tree.ts";
import { cast } from "../ops/cast.ts";
import { tapeFor } from "../ops/tape.ts";

/** The precisions a region can ask for. */
export type AutocastDType = "f32" | HalfDType;

/**
 * Runs `fn` on `params` in the precision `dtype`: a region of a step that computes differently
 * from the rest (Lightning's precision plugins' context managers; torch's `autocast`). plait's
 * ops take their precision from their operands (a product with an f16/bf16 weight runs in half
 * with f32 accumulation), so the region hands `fn` the same tree with its weights converted:
 * - "f32": every f16/bf16 leaf as f32, so the region's products run in f32 even under
 *   16-mixed/bf16-mixed (a precision-sensitive head or a large reduction): the activations are
 *   no longer rounded to half; the weights are the step's half copies widened exactly, so
 *   they keep the half rounding of the masters (the masters themselves are the transform's);
 * - "f16"/"bf16": every f32 leaf of ≥ 2 dimensions (and a leaf of the other half type) as that
 *   half type, as the mixed policy casts, so the region's products run in half;
 * f64 leaves, integer leaves and leaves already in the dtype are passed as they are.
 *
 * The conversions are differentiable casts: gradients flow back to the original leaves (in
 * their gradient dtype). Inside `valueAndGrad` the copies live until its scope ends (the
 * backward pass reads them); outside, the ones the result does not hold are freed when `fn`
 * returns.
 */
export function autocast<T extends Tree, R>(dtype: AutocastDType, params: T, fn: (params: T) => R): R {
  if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16") {
    throw new RangeError(`plait: autocast: dtype must be "f32", "f16" or "bf16", got ${JSON.stringify(dtype)}`);
  }
  if (typeof fn !== "function")
    throw new TypeError(`plait: autocast: argument fn must be a function, got ${typeof fn}`);
  const made: Tensor[] = [];
  const convert = (leaf: Tensor): Tensor => {
    let out = leaf;
    if (dtype === "f32") {
      if (isHalf(leaf.dtype)) out = cast(leaf, "f32");
    } else if (leaf.dtype === "f32" && leaf.ndim >= 2) out = cast(leaf, dtype);
    else if (isHalf(leaf.dtype) && leaf.dtype !== dtype) {
      const wide = cast(leaf, "f32");
      made.push(wide);
      out = cast(wide, dtype);
    }
    if (out !== leaf) made.push(out);
    return out;
  };
  const region = treeMap(convert, params) as T;
  let result: R | undefined;
  try {
    result = fn(region);
    return result;
  } finally {
    const held = new Set(result instanceof Tensor ? [result] : result === undefined ? [] : leavesOf(result));
    for (const t of made) if (!held.has(t) && tapeFor(t) === null && !t.disposed) t.dispose();
  }
}

function leavesOf(x: unknown): Tensor[] {
  try {
    return treeLeaves(x as Tree);
  } catch {
    return []; // not a tree of tensors (a number, a string): it holds no copy
  }
}
