import { add, scale } from "../core/arith.ts";
import { keep } from "../core/scope.ts";
import { type Tree, treeFlatten, treeLeaves, treeUnflatten } from "../core/tree.ts";
import { type Step, type StepLike, stateOf, withState } from "./contract.ts";
import { transform } from "./transform.ts";

/** withAccumulation's explicit state: where the window is, and the running sums. */
export interface AccumulationState {
  /** Micro-batches already summed in this window (0 … k−1). */
  readonly micro: number;
  /** Σ grads of the window so far (null at the start of a window). */
  readonly sum: Tree | null;
  readonly lossSum: number;
  readonly gradScale: number;
}

const KEY = "accumulation";

/**
 * Gradient accumulation over `k` micro-batches (Lightning's accumulate_grad_batches): each call
 * runs one micro-batch and adds its grads into a running sum; the first k−1 calls return
 * `accumulating: true` with no grads, so outer transforms (withDDP, withAMP, withGradClip) act
 * once per window, on the mean gradient Σg / k that the k-th call returns. The reported loss of
 * the k-th call is the window's mean loss. The sums live in the explicit state, so a checkpoint
 * taken mid-window resumes it.
 */
export function withAccumulation<B>(step: StepLike<B>, k: number): Step<B> {
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`plait: withAccumulation: k must be a positive integer, got ${String(k)}`);
  }
  const empty: AccumulationState = { micro: 0, sum: null, lossSum: 0, gradScale: 1 };
  return transform(step, {
    name: "withAccumulation",
    key: KEY,
    initState: () => empty,
    async run(params, batch, ctx, inner) {
      if (ctx.microBatch) throw new Error("plait: withAccumulation nested inside withAccumulation");
      const st = stateOf<AccumulationState>(ctx, KEY);
      if (st === undefined)
        throw new Error(`plait: withAccumulation: ctx.state.${KEY} is missing: start from trainer.init(params)`);
      const out = await inner.run(params, batch, { ...ctx, microBatch: { index: st.micro, of: k } });
      if (out.skip || out.accumulating) {
        throw new Error(
          "plait: withAccumulation: the inner step skipped or accumulated; wrap skipping transforms (withAMP) outside withAccumulation",
        );
      }
      const gradScale = out.gradScale ?? 1;
      if (st.sum !== null && gradScale !== st.gradScale) {
        throw new Error(`plait: withAccumulation: gradScale changed within a window (${st.gradScale} → ${gradScale})`);
      }
      const sum = st.sum === null ? keepTree(out.grads) : addInto(st.sum, out.grads);
      const micro = st.micro + 1;
      const lossSum = st.lossSum + out.loss;
      if (micro < k) {
        return withState({ loss: out.loss, grads: [], accumulating: true, gradScale, metrics: out.metrics }, KEY, {
          micro,
          sum,
          lossSum,
          gradScale,
        } satisfies AccumulationState);
      }
      if (k > 1) for (const g of treeLeaves(sum)) scale(g, 1 / k, g);
      return withState({ ...out, loss: lossSum / k, grads: sum, gradScale }, KEY, empty);
    },
  });
}

function keepTree(t: Tree): Tree {
  for (const g of treeLeaves(t)) keep(g);
  return t;
}

/** sum += grads leaf by leaf (same structure checked); frees grads. */
function addInto(sum: Tree, grads: Tree): Tree {
  const a = treeFlatten(sum);
  const b = treeFlatten(grads);
  if (a.def.key !== b.def.key) {
    throw new TypeError(
      `plait: withAccumulation: grads changed structure within a window (${a.def.key} → ${b.def.key})`,
    );
  }
  for (const [i, g] of b.leaves.entries()) {
    add(a.leaves[i], g, a.leaves[i]);
    g.dispose();
  }
  return treeUnflatten(a.def, a.leaves);
}
