// Suite "train": samples/s of training the demo's MLP (784→256→10, relu, softmax cross-entropy,
// SGD lr 0.1, batch 64) on the 8,000 MNIST training digits, plait against tfjs 4.22 with its
// WASM backend (XNNPACK; `optimizer.minimize` inside `tf.tidy`, the idiomatic loop) in the same
// run, both on one thread: the measurement runs in a child process with PLAIT_THREADS=1
// (tfjs-backend-wasm has no threads under Node). plait trains whole epochs; tfjs, ~15× slower,
// a fixed number of batches after a warm-up. Also reports the arena's bytes in use after
// epoch 1 and after epoch 10: a run that holds steady memory has them equal.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  Batcher,
  gatherBatch,
  loadMnist,
  mlp,
  Rng,
  runtime,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  train,
  valueAndGrad,
} from "plait";
import type { Measurement } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";
import { tfjsWasm } from "./lib/tfjs.ts";

const BATCH = 64;
const LR = 0.1;
const PLAIT_EPOCHS = 10;
const TFJS_STEPS = 40;

interface Result {
  plaitSamplesPerSec: number;
  tfjsSamplesPerSec: number;
  bytesAfterEpoch1: number;
  bytesAfterEpoch10: number;
  plaitEpochSeconds: number[];
}

async function measurePlait(data: ReturnType<typeof loadMnist>) {
  const model = mlp([784, 256, 10]);
  const loss = (p: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(p, b.x), b.y);
  const trainer = train(valueAndGrad(loss), sgd({ lr: LR }));
  let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
  const batcher = new Batcher(data.train.n, { batchSize: BATCH, seed: 0 });
  const epochSeconds: number[] = [];
  const bytes: number[] = [];
  for (let epoch = 0; epoch < PLAIT_EPOCHS; epoch++) {
    const t0 = performance.now();
    for (const idx of batcher.batches(epoch)) {
      const { images, labels } = gatherBatch(data.train, idx);
      ({ state } = await trainer(state, { x: images, y: labels }));
      images.dispose();
      labels.dispose();
    }
    epochSeconds.push((performance.now() - t0) / 1000);
    bytes.push(runtime().arena.bytesInUse);
  }
  const best = [...epochSeconds.slice(1)].sort((a, b) => a - b)[Math.floor((epochSeconds.length - 1) / 2)];
  return { samplesPerSec: data.train.n / best, epochSeconds, bytes };
}

async function measureTfjs(data: ReturnType<typeof loadMnist>): Promise<number> {
  const tf = await tfjsWasm();
  const w1 = tf.variable(tf.randomNormal([784, 256], 0, Math.sqrt(2 / 784)));
  const b1 = tf.variable(tf.zeros([256]));
  const w2 = tf.variable(tf.randomNormal([256, 10], 0, Math.sqrt(2 / 256)));
  const b2 = tf.variable(tf.zeros([10]));
  const opt = tf.train.sgd(LR);
  const batcher = new Batcher(data.train.n, { batchSize: BATCH, seed: 0 });
  const order = batcher.batches(0);
  const stepOn = (idx: Int32Array) =>
    tf.tidy(() => {
      const x = new Float32Array(idx.length * 784);
      const y = new Int32Array(idx.length);
      idx.forEach((r, i) => {
        x.set(data.train.images.subarray(r * 784, (r + 1) * 784), i * 784);
        y[i] = data.train.labels[r];
      });
      const xs = tf.tensor2d(x, [idx.length, 784]);
      const ys = tf.oneHot(tf.tensor1d(y, "int32"), 10);
      const cost = opt.minimize(() => {
        const h = tf.relu(tf.add(tf.matMul(xs, w1), b1));
        return tf.losses.softmaxCrossEntropy(ys, tf.add(tf.matMul(h, w2), b2)) as any;
      }, true);
      cost?.dataSync(); // the loss is read every step, as a training loop that logs it does
    });
  for (let i = 0; i < 5; i++) stepOn(order[i]);
  const t0 = performance.now();
  for (let i = 0; i < TFJS_STEPS; i++) stepOn(order[5 + i]);
  return (TFJS_STEPS * BATCH) / ((performance.now() - t0) / 1000);
}

async function child(): Promise<void> {
  const data = loadMnist();
  const plait = await measurePlait(data);
  const tfjsSamplesPerSec = await measureTfjs(data);
  const result: Result = {
    plaitSamplesPerSec: plait.samplesPerSec,
    tfjsSamplesPerSec,
    bytesAfterEpoch1: plait.bytes[0],
    bytesAfterEpoch10: plait.bytes[PLAIT_EPOCHS - 1],
    plaitEpochSeconds: plait.epochSeconds,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

export async function run(): Promise<void> {
  const json = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child"], {
    env: { ...process.env, PLAIT_THREADS: "1" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const r = JSON.parse(json.trim().split("\n").at(-1)!) as Result;
  const rows: Measurement[] = [
    { case: `MLP 784-256-10, batch ${BATCH}, 1 thread`, impl: "plait", value: r.plaitSamplesPerSec, unit: "samples/s" },
    {
      case: `MLP 784-256-10, batch ${BATCH}, 1 thread`,
      impl: "tfjs-backend-wasm",
      value: r.tfjsSamplesPerSec,
      unit: "samples/s",
    },
  ];
  const checks: RatioCheck[] = [
    {
      name: "plait / tfjs training throughput, 1 thread",
      ratio: r.plaitSamplesPerSec / r.tfjsSamplesPerSec,
      target: 8,
    },
    {
      name: "arena bytes after epoch 10 / after epoch 1",
      ratio: r.bytesAfterEpoch10 / r.bytesAfterEpoch1,
      target: 1,
      better: "lower",
    },
  ];
  report("train", rows, checks, {
    bytesAfterEpoch1: r.bytesAfterEpoch1,
    bytesAfterEpoch10: r.bytesAfterEpoch10,
    plaitEpochSeconds: r.plaitEpochSeconds,
    tfjsSteps: TFJS_STEPS,
  });
}

if (process.argv.includes("--child")) await child();
