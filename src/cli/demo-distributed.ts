import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { Comm } from "../comm/types.ts";
import { keep } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import { gatherBatch } from "../data/gather.ts";
import { loadMnist } from "../data/mnist.ts";
import { Rng } from "../data/rng.ts";
import { type ProgressMode, progressMode } from "../fit/progress.ts";
import { type EpochRecord, trainEpochs } from "../fit/trainEpochs.ts";
import type { RankContext } from "../launch/context.ts";
import { MAX_DEVICES } from "../launch/devices.ts";
import { spawn } from "../launch/spawn.ts";
import { mlp } from "../nn/mlp.ts";
import { softmaxCrossEntropy } from "../ops/loss.ts";
import { valueAndGrad } from "../ops/valueAndGrad.ts";
import { sgd } from "../optim/sgd.ts";
import type { Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import type { Step } from "../step/contract.ts";
import { type Trainer, train } from "../step/train.ts";
import { withDDP } from "../strategy/ddp.ts";
import { type DPStep, withDP } from "../strategy/dp.ts";
import { withFSDP } from "../strategy/fsdp.ts";
import type { StrategyName } from "../strategy/names.ts";
import type { ShardedStep } from "../strategy/sharded.ts";
import { withZeRO, type ZeROStage } from "../strategy/zero.ts";
import type { Flags } from "./args.ts";
import { lineChart } from "./chart.ts";
import { accuracy, type DEMO_FLAGS } from "./demo.ts";

interface Batch {
  x: Tensor;
  y: Tensor;
}

/** What every rank needs to train (structured-cloned to the workers). */
interface RankArgs {
  strategy: StrategyName;
  precision: Precision;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  hidden: number;
  seed: number;
  progress: ProgressMode;
}

/**
 * `plait demo --devices N --strategy S`: the MNIST demo with N ranks as worker threads (spawn),
 * each training on its shard of every global batch of --batch-size samples (batch/N each, sharded
 * as DistributedSampler does); rank 0 evaluates after each epoch and this thread writes the same
 * outputs as the single-device demo, plus the devices and strategy.
 */
export async function demoDistributed(flags: Flags<typeof DEMO_FLAGS>): Promise<void> {
  const devices = parseDevicesFlag(flags.devices!);
  const strategy = (flags.strategy ?? "ddp") as StrategyName;
  const batchSize = flags["batch-size"]!;
  if (batchSize % devices !== 0) {
    throw new Error(
      `flag --batch-size must be a multiple of --devices (each rank takes batch/devices samples of every global batch); got ${batchSize} and ${devices}`,
    );
  }
  // Each rank's kernel pool: --threads when given, else its share of the cores (the launcher's default).
  if (flags.threads !== undefined) process.env.PLAIT_THREADS = String(flags.threads);
  const args: RankArgs = {
    strategy,
    precision: flags.precision as Precision,
    epochs: flags.epochs!,
    batchSize,
    lr: flags.lr!,
    momentum: flags.momentum!,
    hidden: flags.hidden!,
    seed: flags.seed!,
    progress: progressMode(process.stderr, flags.json),
  };
  const log = (s: string) => flags.json || process.stderr.write(s);
  log(
    `plait demo: MLP 784→${args.hidden}→10 on MNIST digits, ${devices} ranks (${strategy}), global batch ${batchSize} (${batchSize / devices} per rank), ${args.epochs} epochs, ${args.precision}\n`,
  );
  const [main] = await spawn<EpochRecord[]>(new URL(import.meta.url), "demoRank", { devices, args });
  writeReport(flags, args, devices, main);
}

/** One rank of the distributed demo; rank 0 returns the history (with test accuracy), the others []. */
export async function demoRank(ctx: RankContext, a: RankArgs): Promise<EpochRecord[]> {
  const data = loadMnist({ seed: a.seed });
  const model = mlp([784, a.hidden, 10]);
  const loss = (params: Tree, b: Batch) => softmaxCrossEntropy(model.apply(params, b.x), b.y);
  const { step, zero, dp } = distribute(a.strategy, withPrecision(valueAndGrad(loss), a.precision));
  if (dp && !ctx.isMain) {
    await dp.serve(ctx.comm); // rank 0 alone trains; this rank computes its slice of each batch
    return [];
  }
  // DDP, ZeRO, FSDP: each rank takes its shard of every global batch; DP: rank 0 takes it whole
  const shards = dp ? 1 : ctx.worldSize;
  const trainer = train(step, sgd({ lr: a.lr, momentum: a.momentum }), { comm: ctx.comm });
  const batcher = new Batcher(data.train.n, {
    batchSize: a.batchSize / shards,
    seed: a.seed,
    rank: dp ? 0 : ctx.rank,
    worldSize: shards,
  });
  const init = model.init(new Rng(a.seed)) as unknown as Tree;
  const ranked = rankTrainer(trainer, ctx.comm, zero, batcher.batchesPerEpoch, !dp);
  const { history } = await trainEpochs<Batch>({
    trainer: ranked,
    state: trainer.init(zero ? await zero.shard(init, ctx.comm) : init),
    epochs: a.epochs,
    batches: (epoch) => {
      const order = batcher.batches(epoch - 1);
      return {
        count: order.length,
        get: (i) => {
          const { images, labels } = gatherBatch(data.train, order[i]);
          return { x: images, y: labels };
        },
        size: (b) => b.y.size * shards, // the global batch's samples
      };
    },
    evaluate: ctx.isMain
      ? (s) => ({ testAccuracy: accuracy(model, ranked.fullParams() ?? s.params, data.test) })
      : undefined,
    progress: ctx.isMain ? a.progress : "none",
  });
  await dp?.stop(ctx.comm);
  return ctx.isMain ? history : [];
}

function distribute<B>(
  strategy: StrategyName,
  step: Step<B>,
): { step: Step<B>; zero?: ShardedStep<B>; dp?: DPStep<B> } {
  switch (strategy) {
    case "ddp":
      return { step: withDDP(step) };
    case "dp": {
      const dp = withDP(step);
      return { step: dp, dp };
    }
    case "fsdp": {
      const fsdp = withFSDP(step);
      return { step: fsdp, zero: fsdp };
    }
    case "zero1":
    case "zero2":
    case "zero3": {
      const zero = withZeRO(step, { stage: Number(strategy.slice(4)) as ZeROStage });
      return { step: zero, zero };
    }
  }
}

/**
 * The trainer as every rank runs it: with `meanLoss`, each step's reported loss is its mean over
 * ranks (the global batch's loss); under ZeRO and FSDP, where train holds shards, every rank
 * all-gathers the full params after an epoch's last step, for rank 0 to evaluate (fullParams).
 */
function rankTrainer<B>(
  trainer: Trainer<B>,
  comm: Comm,
  zero: ShardedStep<B> | undefined,
  stepsPerEpoch: number,
  meanLoss: boolean,
): Trainer<B> & { fullParams(): Tree | undefined } {
  let steps = 0;
  let full: Tree | undefined;
  const ranked = async (state: Parameters<Trainer<B>>[0], batch: B) => {
    const r = await trainer(state, batch);
    const t = new Tensor([1], "f64");
    try {
      t.data()[0] = r.out.loss;
      if (meanLoss) await comm.allReduce(t, "avg");
      if (zero && ++steps % stepsPerEpoch === 0) {
        for (const leaf of full ? treeLeaves(full) : []) leaf.dispose();
        full = await zero.gather(r.state.params, comm);
        for (const leaf of treeLeaves(full)) keep(leaf); // outlives the step's scope, until the next epoch's
      }
      return { ...r, out: { ...r.out, loss: t.data()[0] } };
    } finally {
      t.dispose();
    }
  };
  return Object.assign(ranked, { init: trainer.init, fullParams: () => full });
}

function parseDevicesFlag(raw: string): number {
  const n = raw === "auto" ? "auto" : Number(raw);
  if (n === "auto") return Math.min(MAX_DEVICES, availableParallelism());
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_DEVICES) || raw.trim() !== raw) {
    throw new Error(`flag --devices must be an integer from 1 to ${MAX_DEVICES} or "auto"; got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The single-device demo's outputs: history.json and mnist.svg under --out, then a summary line or --json. */
function writeReport(flags: Flags<typeof DEMO_FLAGS>, a: RankArgs, devices: number, history: EpochRecord[]): void {
  const last = history.at(-1)!;
  const seconds = history.reduce((t, h) => t + h.seconds, 0);
  const samples = history.reduce((t, h) => t + h.samples, 0);
  const summary = {
    precision: a.precision,
    testAccuracy: last.metrics.testAccuracy,
    epochs: a.epochs,
    batchSize: a.batchSize,
    samplesPerSec: samples / seconds,
    finalLoss: last.loss,
    skippedSteps: history.reduce((t, h) => t + h.skipped, 0),
    devices,
    strategy: a.strategy,
  };
  const dir = resolve(flags.out!, `mnist-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "history.json"), `${JSON.stringify({ summary, history }, null, 2)}\n`);
  const title = `plait demo: MLP 784-${a.hidden}-10, ${devices} ranks (${a.strategy}), batch ${a.batchSize}, SGD lr ${a.lr} momentum ${a.momentum}, ${a.precision}`;
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
