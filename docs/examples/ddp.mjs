// Data-parallel training on two worker threads with launch(): this script runs once per rank
// (rank 0 here, rank 1 in a worker that re-runs it), every rank on its own half of each batch;
// withDDP averages the gradients, withAMP computes in bf16 with f32 master weights.
// Run: node docs/examples/ddp.mjs  (test/examples.test.ts runs it too)
import {
  Batcher,
  gatherBatch,
  launch,
  loadMnist,
  mlp,
  Rng,
  scope,
  sgd,
  softmaxCrossEntropy,
  train,
  valueAndGrad,
  withAMP,
  withDDP,
} from "plait";

const ctx = await launch({ devices: 2 });
const data = loadMnist({ seed: 0 });
const model = mlp([784, 256, 10]);
const loss = valueAndGrad((params, batch) => softmaxCrossEntropy(model.apply(params, batch.x), batch.y));
const step = withDDP(withAMP(loss, { precision: "bf16-mixed" }));
const trainer = train(step, sgd({ lr: 0.1, momentum: 0.9 }), { comm: ctx.comm });
// Each rank may start from its own params: the init (withDDP's part of it) broadcasts rank 0's.
let state = await trainer.init(model.init(new Rng(ctx.rank)));
// 32 samples per rank per step: a global batch of 64, split as torch's DistributedSampler does.
const batcher = new Batcher(data.train.n, { batchSize: 32, seed: 0, rank: ctx.rank, worldSize: ctx.worldSize });

for (let epoch = 0; epoch < 10; epoch++) {
  let sum = 0;
  const batches = batcher.batches(epoch);
  for (const idx of batches) {
    await scope(async () => {
      const { images, labels } = gatherBatch(data.train, idx);
      const { state: next, out } = await trainer(state, { x: images, y: labels });
      state = next;
      sum += out.loss;
    });
  }
  if (ctx.isMain) console.log(`epoch ${epoch + 1}: mean loss ${(sum / batches.length).toFixed(4)} (rank 0's half)`);
}

if (ctx.isMain) {
  // every rank holds the same params: rank 0 evaluates
  const hits = scope(() => {
    const { images, labels } = gatherBatch(
      data.test,
      Int32Array.from({ length: data.test.n }, (_, i) => i),
    );
    const logits = model.apply(state.params, images).toFloat32Array();
    const truth = labels.data();
    let n = 0;
    for (let r = 0; r < data.test.n; r++) {
      const row = logits.subarray(r * 10, r * 10 + 10);
      if (row.indexOf(Math.max(...row)) === truth[r]) n++;
    }
    return n;
  });
  console.log(`test accuracy ${((100 * hits) / data.test.n).toFixed(2)}%`);
}
await ctx.join();
