import type { Tensor } from "../core/tensor.ts";
import { copyTree, type Tree, treeLeaves } from "../core/tree.ts";
import { valueAndGrad } from "../ops/valueAndGrad.ts";
import type { Step } from "./contract.ts";

/** The key of the model buffers in the train state (`state.transforms.buffers`). */
export const BUFFERS_KEY = "buffers";

/**
 * `valueAndGrad` for a model with buffers: state that the forward pass reads and updates but no
 * gradient or optimizer touches, such as batchNorm's running statistics (torch's
 * `register_buffer`, flax's `batch_stats` collection).
 *
 * The buffers live in the train state beside the transforms' states, under `"buffers"`
 * (`state.transforms.buffers`): `init` makes them with `initBuffers(dtype)` (f64 when the params
 * the step is given are f64, as under "64-true", else f32), each step hands them to
 * `lossFn(params, batch, buffers)`, which updates them in place (batchNorm with `train: true`),
 * and `save`/`restore` checkpoint them with everything else. Read them for evaluation from
 * `state.transforms.buffers`.
 *
 * Under a distributing strategy every rank keeps its own buffers, updated from its own shard
 * of each batch (torch's BatchNorm without SyncBatchNorm): rank 0's running statistics are the
 * ones torch's DDP would broadcast (it copies rank 0's buffers to every rank each forward), and
 * the ones the demo evaluates and saves. Batch statistics are per rank as well, so a model with
 * batchNorm trains to different parameters at different world sizes, as in torch. Inside
 * withAccumulation they update once per micro-batch; a step that a loss scaler skips still
 * updated them (its forward ran), also as in torch.
 */
export function valueAndGradWithBuffers<B>(
  lossFn: (params: Tree, batch: B, buffers: Tree) => Tensor,
  initBuffers: (dtype: "f32" | "f64") => Tree,
): Step<B> {
  const grad = valueAndGrad((params: Tree, b: { batch: B; buffers: Tree }) => lossFn(params, b.batch, b.buffers));
  return {
    name: "valueAndGradWithBuffers",
    init: async (params) => {
      const dtype = treeLeaves(params)[0]?.dtype === "f64" ? "f64" : "f32";
      return { params, state: { [BUFFERS_KEY]: initBuffers(dtype) } };
    },
    run: async (params, batch, ctx) => {
      const buffers = ctx.state[BUFFERS_KEY] as Tree | undefined;
      if (buffers === undefined) {
        throw new Error(
          `plait: valueAndGradWithBuffers: ctx.state has no "${BUFFERS_KEY}": run the step through train(), whose init makes them`,
        );
      }
      return grad(params, { batch, buffers }, ctx);
    },
    gather: async (params) => copyTree(params),
  };
}
