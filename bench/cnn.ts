// Suite "cnn": samples/s of training the demo's CNN (conv3×3(16)-relu-maxpool-conv3×3(32)-relu-
// maxpool-linear(1568→10), softmax cross-entropy, SGD lr 0.05 momentum 0.9, batch 64) on MNIST
// digits: plait on the WASM GEMM (PLAIT_BLAS=off) and on the system BLAS, against the same
// architecture in tfjs 4.22 with its WASM backend (tf.layers.conv2d, maxPooling2d, dense;
// `optimizer.minimize` inside `tf.tidy`, the loss read each step), in one child process with
// PLAIT_THREADS=1 (tfjs-backend-wasm has no threads under Node). The three run in turns, twice,
// and each keeps its better turn: on a shared 2-core VM a turn can lose a time slice to others.
//
// tfjs-backend-wasm 4.22 registers no Conv2DBackpropFilter kernel, so tf.layers cannot train a
// convolution on it (tfjs#8474). The bench registers Conv2D's gradient itself: dx through the
// backend's Conv2DBackpropInput (tf.conv2dTranspose), dw through its Conv2D by the usual
// identity dw[i, j, c, o] = Σ x[n, y + i, z + j, c] · dy[n, y, z, o], a convolution of x seen
// as [c, h, w, n] with dy seen as a [h, w, n, o] filter (stride 1, as every convolution here).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  Batcher,
  blasStatus,
  cnn,
  configure,
  gatherBatch,
  loadMnist,
  Rng,
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
const LR = 0.05;
const MOMENTUM = 0.9;
const WARMUP = 5;
const STEPS = 30;
const ROUNDS = 2;

type Data = ReturnType<typeof loadMnist>;
type Runner = (steps: number) => Promise<number>; // seconds for `steps` steps

interface Result {
  wasm: number;
  blas: number | null;
  tfjs: number;
  blasLibrary: string | null;
}

async function plaitRunner(data: Data, blas: "off" | "auto"): Promise<Runner> {
  const model = cnn();
  const loss = (p: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(p, b.x, { train: true }), b.y);
  const trainer = train(valueAndGrad(loss), sgd({ lr: LR, momentum: MOMENTUM }));
  let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
  const order = new Batcher(data.train.n, { batchSize: BATCH, seed: 0 }).batches(0);
  let next = 0;
  return async (steps) => {
    configure({ blas });
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const { images, labels } = gatherBatch(data.train, order[next++ % order.length]);
      ({ state } = await trainer(state, { x: images, y: labels }));
      images.dispose();
      labels.dispose();
    }
    return (performance.now() - t0) / 1000;
  };
}

async function tfjsRunner(data: Data): Promise<Runner> {
  const tf = await tfjsWasm();
  registerConvGradient(tf);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10 }),
    ],
  });
  const opt = tf.train.momentum(LR, MOMENTUM);
  const order = new Batcher(data.train.n, { batchSize: BATCH, seed: 0 }).batches(0);
  let next = 0;
  const step = (idx: Int32Array) =>
    tf.tidy(() => {
      const x = new Float32Array(idx.length * 784);
      const y = new Int32Array(idx.length);
      idx.forEach((r, i) => {
        x.set(data.train.images.subarray(r * 784, (r + 1) * 784), i * 784);
        y[i] = data.train.labels[r];
      });
      const xs = tf.tensor4d(x, [idx.length, 28, 28, 1]);
      const ys = tf.oneHot(tf.tensor1d(y, "int32"), 10);
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as any) as any, true);
      cost?.dataSync(); // the loss is read every step, as a training loop that logs it does
    });
  return async (steps) => {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step(order[next++ % order.length]);
    return (performance.now() - t0) / 1000;
  };
}

/** Conv2D's gradient from kernels tfjs-backend-wasm has (see the header); stride 1, no dilation. */
function registerConvGradient(tf: any): void {
  tf.registerGradient({
    kernelName: "Conv2D",
    inputsToSave: ["x", "filter"],
    gradFunc: (dy: any, saved: any[], attrs: any) => {
      const [x, filter] = saved;
      const { strides, pad, dilations } = attrs;
      const one = (v: any) => v === undefined || v === 1 || (Array.isArray(v) && v.every((d: number) => d === 1));
      if (!one(strides) || !one(dilations))
        throw new Error("bench cnn: the Conv2D gradient here supports stride 1, dilation 1");
      const [kh, kw] = filter.shape;
      const [ph, pw] = pad === "same" ? [(kh - 1) / 2, (kw - 1) / 2] : [0, 0];
      return {
        x: () => tf.conv2dTranspose(dy, filter, x.shape, 1, pad),
        filter: () => {
          const xt = tf.transpose(x, [3, 1, 2, 0]); // [c, h, w, n]
          const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, o]
          const dw = tf.conv2d(xt, dyt, 1, [
            [0, 0],
            [ph, ph],
            [pw, pw],
            [0, 0],
          ]); // [c, kh, kw, o]
          return tf.transpose(dw, [1, 2, 0, 3]);
        },
      };
    },
  });
}

async function child(): Promise<void> {
  const data = loadMnist();
  const wasm = await plaitRunner(data, "off");
  configure({ blas: "auto" });
  const status = blasStatus();
  const blasLibrary = status.inUse ? `${status.path} (${status.config})` : null;
  const blas = blasLibrary ? await plaitRunner(data, "auto") : undefined;
  const tfjs = await tfjsRunner(data);
  const runners: [keyof Omit<Result, "blasLibrary">, Runner | undefined][] = [
    ["wasm", wasm],
    ["blas", blas],
    ["tfjs", tfjs],
  ];
  const best: Record<string, number> = {};
  for (const [, r] of runners) if (r) await r(WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, r] of runners) {
      if (!r) continue;
      const rate = (STEPS * BATCH) / (await r(STEPS));
      best[name] = Math.max(best[name] ?? 0, rate);
    }
  }
  const result: Result = { wasm: best.wasm, blas: best.blas ?? null, tfjs: best.tfjs, blasLibrary };
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
  const what = `CNN (demo's), batch ${BATCH}, 1 thread`;
  const rows: Measurement[] = [
    { case: what, impl: "plait (WASM GEMM)", value: r.wasm, unit: "samples/s" },
    ...(r.blas === null ? [] : [{ case: what, impl: "plait (BLAS)", value: r.blas, unit: "samples/s" }]),
    { case: what, impl: "tfjs-backend-wasm", value: r.tfjs, unit: "samples/s" },
  ];
  const checks: RatioCheck[] = [
    { name: "plait (WASM GEMM) / tfjs CNN training throughput, 1 thread", ratio: r.wasm / r.tfjs, target: 1.5 },
  ];
  if (r.blas !== null) {
    checks.push({ name: "plait (BLAS) / tfjs CNN training throughput, 1 thread", ratio: r.blas / r.tfjs, target: 4 });
  }
  report("cnn", rows, checks, { steps: STEPS, rounds: ROUNDS, blasLibrary: r.blasLibrary });
}

if (process.argv.includes("--child")) await child();
