// Run by scripts/consumer.mjs in a fresh app that installed the packed tarball: under Node (types
// stripped), Deno and Bun. Imports plait by name, trains two steps on a tiny MLP, saves the state
// and restores it into a new trainer, and prints one JSON line ending in `"ok": true`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  load,
  mlp,
  Rng,
  runtime,
  save,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type TrainState,
  type Tree,
  tensor,
  train,
  valueAndGrad,
} from "plait";

const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const model = mlp([4, 8, 3]);
const loss = (params: Tree, batch: { x: Tensor; y: Tensor }) =>
  softmaxCrossEntropy(model.apply(params, batch.x), batch.y);
const trainer = train(valueAndGrad(loss), sgd({ lr: 0.5 }));
const x = tensor(
  Float32Array.from({ length: 8 * 4 }, (_, i) => Math.sin(i)),
  [8, 4],
);
const y = tensor(
  Int32Array.from({ length: 8 }, (_, i) => i % 3),
  [8],
);

const state = await trainer.init(model.init(new Rng(0)));
const first = await trainer(state, { x, y });
const second = await trainer(first.state, { x, y });
const dir = mkdtempSync(join(tmpdir(), "plait-consumer-ckpt-"));
let resumed: number;
try {
  save(dir, second.state);
  const restored: TrainState = await trainer.restore(model.init(new Rng(1)), load(dir));
  resumed = (await trainer(restored, { x, y })).out.loss;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const third = (await trainer(second.state, { x, y })).out.loss;
const losses = [first.out.loss, second.out.loss, third];
const ok = losses.every(Number.isFinite) && second.out.loss < first.out.loss && resumed === third;
console.log(JSON.stringify({ runtime: runtimeName, kernels: runtime().variant, losses, resumed, ok }));
if (!ok) process.exitCode = 1;
