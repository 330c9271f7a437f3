// Shared by test/amp.test.ts and test/precision.test.ts: a small MNIST MLP trained through
// `train` under a precision, and byte-level snapshots of a train state. Not a test file.
import { Batcher } from "../src/data/batcher.ts";
import { gatherBatch, gatherRows } from "../src/data/gather.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { Rng } from "../src/data/rng.ts";
import { cast, runtime, scope, type Tensor, type Tree, treeLeaves } from "../src/index.ts";
import { type Mlp, mlp } from "../src/nn/mlp.ts";
import { softmaxCrossEntropy } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { sgd } from "../src/optim/sgd.ts";
import type { Optimizer } from "../src/optim/types.ts";
import type { StepFn, StepLike, StepOut } from "../src/step/contract.ts";
import { type Trainer, type TrainState, train } from "../src/step/train.ts";

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** A few hundred digits: 512 to train on, 500 to measure accuracy on. */
export const digits = loadMnist({ train: 512, test: 500, seed: 3 });

export const mnistModel = (hidden = 64): Mlp => mlp([784, hidden, 10]);

/** The mean softmax cross-entropy step of `model`. */
export const lossStep = (model: Mlp): StepFn<Batch> =>
  valueAndGrad((params: Tree, b: Batch) => softmaxCrossEntropy(model.apply(params, b.x), b.y));

/** The batches of `epochs` epochs of batch size 32 over the 512 training digits, in a fixed order. */
export function batchOrder(epochs: number): Int32Array[] {
  const batcher = new Batcher(digits.train.n, { batchSize: 32, seed: 5 });
  return Array.from({ length: epochs }, (_, e) => batcher.batches(e)).flat();
}

/**
 * Trains `model` from seed-7 params through `wrap(lossStep)` with `optimizer` (default SGD,
 * lr 0.1, momentum 0.9) on `order`; returns the final state, each step's out and the trainer. Given
 * `loaded` (a TrainState read back with `load`), it continues from it through trainer.restore.
 */
export async function trainMlp(
  model: Mlp,
  wrap: (s: StepLike<Batch>) => StepLike<Batch>,
  order: Int32Array[],
  loaded?: TrainState,
  optimizer: Optimizer = sgd({ lr: 0.1, momentum: 0.9 }),
): Promise<{ state: TrainState; outs: StepOut[]; trainer: Trainer<Batch> }> {
  const trainer = train(wrap(lossStep(model)), optimizer);
  const initial = model.init(new Rng(7)) as unknown as Tree;
  let s: TrainState;
  if (loaded) {
    s = await trainer.restore(initial, loaded);
    for (const t of treeLeaves(initial)) t.dispose(); // only a template: restore keeps loaded's tensors
  } else {
    s = await trainer.init(initial);
  }
  const outs: StepOut[] = [];
  for (const idx of order) {
    const out = await scope(async () => {
      const { images, labels } = gatherBatch(digits.train, idx);
      const r = await trainer(s, { x: images, y: labels });
      s = r.state;
      return r.out;
    });
    outs.push(out);
  }
  return { state: s, outs, trainer };
}

/** Mean loss and accuracy of `params` on the 500 test digits (images cast to f64 for f64 params). */
export function evaluate(model: Mlp, params: Tree): { loss: number; accuracy: number } {
  return scope(() => {
    const idx = Int32Array.from({ length: digits.test.n }, (_, i) => i);
    const images = gatherRows(digits.test.images, [784], idx);
    const labels = gatherRows(digits.test.labels, [], idx);
    const x = treeLeaves(params)[0].dtype === "f64" ? cast(images, "f64") : images;
    const logits = model.apply(params, x);
    const loss = softmaxCrossEntropy(logits, labels).data()[0];
    const v = logits.data();
    let hits = 0;
    for (let r = 0; r < idx.length; r++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (v[r * 10 + c] > v[r * 10 + best]) best = c;
      if (best === digits.test.labels[r]) hits++;
    }
    return { loss, accuracy: hits / idx.length };
  });
}

/** The bytes of every tensor in `tree`, concatenated (a bit-exact snapshot). */
export function bytesOf(tree: Tree): Uint8Array {
  const leaves = treeLeaves(tree);
  const out = new Uint8Array(leaves.reduce((n, t) => n + t.byteLength, 0));
  let at = 0;
  for (const t of leaves) {
    out.set(new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength), at);
    at += t.byteLength;
  }
  return out;
}
