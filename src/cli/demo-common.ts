import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cast } from "../core/cast.ts";
import { scope } from "../core/scope.ts";
import type { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import type { Batcher } from "../data/batcher.ts";
import { gatherBatch, gatherRows, type LabelledData } from "../data/gather.ts";
import type { MnistSplit } from "../data/mnist.ts";
import { lineChart } from "../fit/chart.ts";
import type { EpochRecord } from "../fit/trainEpochs.ts";
import { PRECISIONS } from "../precision/policy.ts";
import { STRATEGY_NAMES } from "../strategy/names.ts";
import type { FlagSpec, Flags } from "./args.ts";
import { DEMO_DEFAULTS, DEMO_MODELS, type DemoModelName } from "./demo-model.ts";

// What the one-device demo (demo.ts) and the distributed one (demo-distributed.ts) share.

export const DEMO_FLAGS = {
  model: {
    type: "string",
    default: "mlp",
    choices: DEMO_MODELS,
    help: "what to train: the MLP or the CNN (conv-pool-conv-pool-linear) on digits, or a GPT on first names",
  },
  "batch-norm": {
    type: "boolean",
    help: "with --model cnn: a batchNorm after each convolution (running statistics kept in the train state)",
  },
  epochs: { type: "int", min: 1, help: "passes over the training set (default: 10 for mlp, 4 for cnn, 4 for gpt)" },
  "batch-size": { type: "int", default: 64, min: 1, help: "samples per step" },
  lr: {
    type: "number",
    min: 0,
    help: "learning rate: SGD's (default 0.1 for mlp, 0.05 for cnn), Adam's peak for gpt (0.01)",
  },
  momentum: { type: "number", default: 0.9, min: 0, help: "SGD momentum" },
  hidden: { type: "int", default: 256, min: 1, help: "width of the hidden layer" },
  seed: { type: "int", default: 0, help: "seed for init, shuffling and the split" },
  precision: { type: "string", default: "32-true", choices: PRECISIONS, help: "Lightning's precision names" },
  threads: { type: "int", min: 1, help: "kernel threads (default: PLAIT_THREADS, else one per core; 1 for gpt)" },
  device: {
    type: "string",
    default: "cpu",
    help: 'where the MLP trains: "cpu", or "cuda:N" (one CUDA device; see demo-cuda.ts)',
  },
  devices: { type: "string", default: "1", help: 'ranks (worker threads): an integer, or "auto" (one per core)' },
  strategy: { type: "string", choices: STRATEGY_NAMES, help: "how ranks share the work (default ddp)" },
  out: { type: "string", default: "runs", help: "folder for the chart and metrics" },
  json: { type: "boolean", help: "print one JSON object at the end and nothing else" },
  help: { type: "boolean", help: "show this help" },
} as const satisfies Record<string, FlagSpec>;

/** The flags with the chosen model's defaults filled in (epochs and lr depend on --model). */
export function withModelDefaults(
  flags: Flags<typeof DEMO_FLAGS>,
): Flags<typeof DEMO_FLAGS> & { model: DemoModelName } {
  const model = flags.model as DemoModelName;
  const d = DEMO_DEFAULTS[model];
  return { ...flags, model, epochs: flags.epochs ?? d.epochs, lr: flags.lr ?? d.lr };
}

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/**
 * trainEpochs' `batches` for a labelled split: each epoch in `batcher`'s order, each batch
 * gathered and handed to `place` (the identity on the CPU; a copy to the device on CUDA), its
 * size `samplesPerLabel` samples per label (the ranks' shards together make one global batch).
 */
export function labelledBatches<B extends { y: { size: number } }>(
  batcher: Batcher,
  split: LabelledData,
  place: (b: Batch) => B,
  samplesPerLabel = 1,
) {
  return (epoch: number) => {
    const order = batcher.batches(epoch - 1);
    return {
      count: order.length,
      get: (i: number) => {
        const { images, labels } = gatherBatch(split, order[i]);
        return place({ x: images, y: labels });
      },
      size: (b: B) => b.y.size * samplesPerLabel,
    };
  };
}

/**
 * The demo's outputs: history.json and mnist.svg in a new folder under --out, then the summary
 * as one JSON line (--json) or the accuracy and the chart's path on stderr.
 */
export function writeReport(
  flags: Flags<typeof DEMO_FLAGS>,
  summary: { testAccuracy: number; samplesPerSec: number } & Record<string, unknown>,
  history: EpochRecord[],
  title: string,
): void {
  const dir = resolve(flags.out!, `mnist-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "history.json"), `${JSON.stringify({ summary, history }, null, 2)}\n`);
  writeFileSync(
    join(dir, "mnist.svg"),
    lineChart(title, [
      { label: "training loss", series: [{ name: "loss", values: history.map((h) => h.loss) }] },
      { label: "test accuracy", series: [{ name: "accuracy", values: history.map((h) => h.metrics.testAccuracy) }] },
    ]),
  );
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stderr.write(
      `test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%  (${summary.samplesPerSec.toFixed(0)} samples/s)\n`,
    );
    process.stderr.write(`chart: ${join(dir, "mnist.svg")}\n`);
  }
}

/** The summary's totals over the epochs. */
export function totals(history: EpochRecord[]) {
  const last = history.at(-1)!;
  const seconds = history.reduce((t, h) => t + h.seconds, 0);
  const samples = history.reduce((t, h) => t + h.samples, 0);
  return {
    testAccuracy: last.metrics.testAccuracy,
    samplesPerSec: samples / seconds,
    finalLoss: last.loss,
    skippedSteps: history.reduce((t, h) => t + h.skipped, 0),
  };
}

/**
 * Fraction of `split` the model classifies correctly (forward only, in chunks of 500). The
 * images are cast to f64 for f64 params ("64-true"); half params round them at the matmul.
 */
export function accuracy(model: { apply(params: Tree, x: Tensor): Tensor }, params: Tree, split: MnistSplit): number {
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
