// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// One process of test/gpu/train.mjs's two-rank case: torchrun's variables (WORLD_SIZE, RANK,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from the environment; ncclWorld() meets the other rank at
// the TCP store and runs on cuda:LOCAL_RANK; 3 withDDP steps of the MNIST MLP on this rank's own
// batches. Prints one JSON line: a checksum of the final params (equal on both ranks when the
// gradients were averaged over NCCL) or the error.
import {
  localComm,
  matmul,
  ncclWorld,
  relu,
  sgd,
  softmaxCrossEntropy,
  tensor,
  train,
  treeLeaves,
  valueAndGrad,
  withDDP,
} from "../../dist/src/index.js";

const rank = Number(process.env.RANK);
const out = (o) => process.stdout.write(`${JSON.stringify({ rank, ...o })}\n`);
function values(n, seed, amp = 1) {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * amp;
  });
}
const t = (shape, seed, amp) =>
  tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      amp,
    ),
    shape,
  );
try {
  const comm = await ncclWorld({ rank: 0, worldSize: 1, comm: localComm() }, { timeoutMs: 60_000 });
  const device = `cuda:${comm.device}`;
  const on = (x) => x.to(device);
  const params = {
    w1: on(t([784, 64], 1, 0.05)),
    b1: on(t([64], 2, 0.1)),
    w2: on(t([64, 10], 3, 0.2)),
    b2: on(t([10], 4, 0.1)),
  };
  const loss = (p, b) =>
    softmaxCrossEntropy(matmul(relu(matmul(b.x, p.w1, { bias: p.b1 })), p.w2, { bias: p.b2 }), b.y);
  const trainer = train(withDDP(valueAndGrad(loss)), sgd({ lr: 0.1, momentum: 0.9 }), { comm });
  let state = await trainer.init(params);
  for (let i = 0; i < 3; i++) {
    const seed = 1000 * (rank + 1) + i;
    const y = tensor(
      values(32, seed).map((v) => Math.floor((v + 1) * 5)),
      [32],
      { dtype: "i32" },
    );
    state = (await trainer(state, { x: on(t([32, 784], seed, 1)), y: on(y) })).state;
  }
  const params_ = treeLeaves(state.params).map((l) => l.toArray().reduce((s, v, j) => s + v * ((j % 97) + 1), 0));
  await comm.destroy();
  out({ ok: true, device, params: params_ });
  process.exit(0);
} catch (e) {
  out({ ok: false, name: e.name, error: e.message, stack: process.env.PLAIT_DEBUG ? e.stack : undefined });
  process.exit(1);
}
