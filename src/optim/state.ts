import { CudaTensor } from "../core/device.ts";
import { type Tensor, zeros } from "../core/tensor.ts";
import { type Tree, treeMap } from "../core/tree.ts";
import { deviceSlot } from "./device.ts";
import { slotDTypeOf } from "./half.ts";
import { matchingLeaves, type ParamLeaves } from "./leaves.ts";
import type { OptimizerKind, OptState } from "./types.ts";

/** A fresh state: step 0 and one zeroed tree shaped like params per slot name (f32 for half params). */
export function initState(kind: OptimizerKind, hyper: OptState["hyper"], params: Tree, names: string[]): OptState {
  const slots: Record<string, Tree> = {};
  const zero = (p: Tensor) =>
    (p as unknown) instanceof CudaTensor
      ? deviceSlot(p as unknown as CudaTensor)
      : zeros(p.shape, { dtype: slotDTypeOf(p.dtype) });
  for (const name of names) slots[name] = treeMap(zero, params);
  return { kind, step: 0, hyper, slots };
}

/**
 * Checks that `state` belongs to this optimizer and matches `params`; returns each slot's
 * leaves, in the order of the params' leaves.
 */
export function slotLeaves(
  op: string,
  kind: OptimizerKind,
  state: OptState,
  names: string[],
  params: ParamLeaves,
): Tensor[][] {
  if (state === null || typeof state !== "object" || state.kind !== kind) {
    throw new TypeError(`plait: ${op}: argument state has kind ${String(state?.kind)}, expected ${kind}`);
  }
  if (!Number.isSafeInteger(state.step) || state.step < 0) {
    throw new RangeError(`plait: ${op}: state.step must be a non-negative integer, got ${String(state.step)}`);
  }
  const have = Object.keys(state.slots ?? {}).sort();
  if (have.join() !== [...names].sort().join()) {
    throw new TypeError(`plait: ${op}: state.slots has [${have.join(", ")}], expected [${names.join(", ")}]`);
  }
  return names.map((name) => matchingLeaves(op, `state.slots.${name}`, state.slots[name], params, slotDTypeOf));
}
