// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// One process of test/gpu/train.mjs's two-rank case: torchrun's variables (WORLD_SIZE, RANK,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from the environment; ncclWorld() meets the other rank at
// the TCP store and runs on cuda:LOCAL_RANK; 3 withDDP steps of the MNIST MLP on this rank's own
// batches. Prints one JSON line: a checksum of the final params (equal on both ranks when the
// gradients were averaged over NCCL) or the error.
import { localComm, ncclWorld, sgd, train, treeLeaves, valueAndGrad, withDDP } from "../../dist/src/index.js";
import { labels, mlpLoss, mlpParams, t } from "./harness.mjs";

const rank = Number(process.env.RANK);
const out = (o) => process.stdout.write(`${JSON.stringify({ rank, ...o })}\n`);
try {
  const comm = await ncclWorld({ rank: 0, worldSize: 1, comm: localComm() }, { timeoutMs: 60_000 });
  const device = `cuda:${comm.device}`;
  const on = (x) => x.to(device);
  const params = Object.fromEntries(Object.entries(mlpParams()).map(([k, v]) => [k, on(v)]));
  const trainer = train(withDDP(valueAndGrad(mlpLoss)), sgd({ lr: 0.1, momentum: 0.9 }), { comm });
  let state = await trainer.init(params);
  for (let i = 0; i < 3; i++) {
    const seed = 1000 * (rank + 1) + i;
    state = (await trainer(state, { x: on(t([32, 784], seed, 1)), y: on(labels(32, seed)) })).state;
  }
  const params_ = treeLeaves(state.params).map((l) => l.toArray().reduce((s, v, j) => s + v * ((j % 97) + 1), 0));
  await comm.destroy();
  out({ ok: true, device, params: params_ });
  process.exit(0);
} catch (e) {
  out({ ok: false, name: e.name, error: e.message, stack: process.env.PLAIT_DEBUG ? e.stack : undefined });
  process.exit(1);
}
