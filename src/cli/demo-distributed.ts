import { availableParallelism } from "node:os";
import type { Comm } from "../comm/types.ts";
import { keep } from "../core/scope.ts";
import { Tensor } from "../core/tensor.ts";
import { type Tree, treeLeaves } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import { loadMnist } from "../data/mnist.ts";
import { Rng } from "../data/rng.ts";
import { detectEnvironmentName } from "../env/detect.ts";
import { type ProgressMode, progressMode } from "../fit/progress.ts";
import { type EpochRecord, trainEpochs } from "../fit/trainEpochs.ts";
import type { RankContext } from "../launch/context.ts";
import { MAX_DEVICES } from "../launch/devices.ts";
import type { ProcessWorld } from "../launch/external.ts";
import { spawn } from "../launch/spawn.ts";
import { sgd } from "../optim/sgd.ts";
import type { Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import type { Step } from "../step/contract.ts";
import { type Trainer, type TrainState, train } from "../step/train.ts";
import { withDDP, withDDP2 } from "../strategy/ddp.ts";
import { withDP } from "../strategy/dp.ts";
import { withFSDP } from "../strategy/fsdp.ts";
import { withHorovod } from "../strategy/horovod.ts";
import type { StrategyName } from "../strategy/names.ts";
import { withZeRO, type ZeROStage } from "../strategy/zero.ts";
import type { Flags } from "./args.ts";
import { accuracy, type Batch, type DEMO_FLAGS, labelledBatches, totals, writeReport } from "./demo-common.ts";
import { type DemoModelName, demoModel, demoStep, evalModel } from "./demo-model.ts";

/** What every rank needs to train (structured-cloned to the workers). */
interface RankArgs {
  strategy: StrategyName;
  precision: Precision;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  hidden: number;
  model: DemoModelName;
  batchNorm: boolean;
  seed: number;
  progress: ProgressMode;
}

/**
 * `plait demo --devices N --strategy S`: the MNIST demo with N ranks as worker threads (spawn),
 * each training on its shard of every global batch of --batch-size samples (batch/N each, sharded
 * as DistributedSampler does); rank 0 evaluates after each epoch and this thread writes the same
 * outputs as the single-device demo, plus the devices and strategy. Under mpirun or srun every
 * process runs N ranks of a world of processes × N (MPI across processes) and the process of rank
 * 0 alone reports.
 */
export async function demoDistributed(
  flags: Flags<typeof DEMO_FLAGS> & { model: DemoModelName },
  outer?: ProcessWorld,
): Promise<void> {
  const devices = parseDevicesFlag(flags.devices!);
  const strategy = (flags.strategy ?? "ddp") as StrategyName;
  const batchSize = flags["batch-size"]!;
  const processes = outer?.processes ?? 1;
  const worldSize = processes * devices;
  if (batchSize % worldSize !== 0) {
    const by = outer ? `processes × --devices (${processes} × ${devices})` : "--devices";
    throw new Error(
      `flag --batch-size must be a multiple of ${by} (each rank takes batch/ranks samples of every global batch); got ${batchSize} and ${worldSize}`,
    );
  }
  if (strategy === "dp" && outer) {
    throw new Error(
      "flag --strategy dp runs in one process (rank 0 drives its threads); under mpirun or srun use ddp, ddp2, horovod, zero1-3 or fsdp",
    );
  }
  const args: RankArgs = {
    strategy,
    precision: flags.precision as Precision,
    epochs: flags.epochs!,
    batchSize,
    lr: flags.lr!,
    momentum: flags.momentum!,
    hidden: flags.hidden!,
    model: flags.model,
    batchNorm: flags["batch-norm"],
    seed: flags.seed!,
    progress: progressMode(process.stderr, flags.json),
  };
  const main = (outer?.processRank ?? 0) === 0;
  if (!main) args.progress = "none";
  const log = (s: string) => flags.json || !main || process.stderr.write(s);
  const where = outer ? `${processes} processes (${outer.env.name}, MPI) × ${devices} threads` : `${devices} ranks`;
  log(
    `plait demo: ${demoModel(args.model, args.hidden, args.batchNorm).label} on MNIST digits, ${where} (${strategy}), global batch ${batchSize} (${batchSize / worldSize} per rank), ${args.epochs} epochs, ${args.precision}\n`,
  );
  const [history] = await spawn<EpochRecord[]>(new URL(import.meta.url), "demoRank", { devices, args });
  if (!main) return;
  report(flags, args, devices, history, {
    environment: outer?.env.name ?? detectEnvironmentName(),
    backend: !outer ? (devices > 1 ? "shm" : "local") : devices > 1 ? "shm+mpi" : "mpi",
    worldSize,
  });
}

/** One rank of the distributed demo; rank 0 returns the history (with test accuracy), the others []. */
export async function demoRank(ctx: RankContext, a: RankArgs): Promise<EpochRecord[]> {
  const data = loadMnist({ seed: a.seed });
  const model = demoModel(a.model, a.hidden, a.batchNorm);
  const dp = a.strategy === "dp";
  const trainer = train(
    distribute(a.strategy, withPrecision(demoStep(model), a.precision)),
    sgd({ lr: a.lr, momentum: a.momentum }),
    {
      comm: ctx.comm,
    },
  );
  // every rank: params checked equal in shape, rank 0's broadcast, sharded under ZeRO/FSDP
  const state = await trainer.init(model.init(new Rng(a.seed)));
  if (dp && !ctx.isMain) {
    await trainer.serve(state); // rank 0 alone trains; this rank computes its slice of each batch
    return [];
  }
  // DDP, ZeRO, FSDP: each rank takes its shard of every global batch; DP: rank 0 takes it whole
  const shards = dp ? 1 : ctx.worldSize;
  const batcher = new Batcher(data.train.n, {
    batchSize: a.batchSize / shards,
    seed: a.seed,
    rank: dp ? 0 : ctx.rank,
    worldSize: shards,
  });
  const ranked = rankTrainer(trainer, ctx.comm, batcher.batchesPerEpoch, !dp);
  const { history, state: last } = await trainEpochs<Batch>({
    trainer: ranked,
    state,
    epochs: a.epochs,
    batches: labelledBatches(batcher, data.train, (b) => b, shards), // sized as the global batch
    evaluate: ctx.isMain
      ? (s) => ({ testAccuracy: accuracy(evalModel(model, s), ranked.fullParams()!, data.test) })
      : undefined,
    progress: ctx.isMain ? a.progress : "none",
  });
  if (dp) await trainer.stop(last);
  return ctx.isMain ? history : [];
}

/** `step` inside the strategy's transform (the demos' mapping from --strategy). */
export function distribute<B>(strategy: StrategyName, step: Step<B>): Step<B> {
  switch (strategy) {
    case "ddp":
      return withDDP(step);
    case "ddp2":
      return withDDP2(step);
    case "horovod":
      return withHorovod(step);
    case "dp":
      return withDP(step);
    case "fsdp":
      return withFSDP(step);
    case "zero1":
    case "zero2":
    case "zero3":
      return withZeRO(step, { stage: Number(strategy.slice(4)) as ZeROStage });
  }
}

/**
 * The trainer as every rank runs it: with `meanLoss`, each step's reported loss is its mean over
 * ranks (the global batch's loss); after an epoch's last step every rank gathers the full params
 * (all-gathered under ZeRO and FSDP, where train holds shards), for rank 0 to evaluate (fullParams).
 */
export function rankTrainer<B>(
  trainer: Trainer<B>,
  comm: Comm,
  stepsPerEpoch: number,
  meanLoss: boolean,
): Trainer<B> & { fullParams(): Tree | undefined } {
  let steps = 0;
  let full: Tree | undefined;
  const ranked = async (state: TrainState, batch: B) => {
    const r = await trainer(state, batch);
    const t = new Tensor([1], "f64");
    try {
      t.data()[0] = r.out.loss;
      if (meanLoss) await comm.allReduce(t, "avg");
      if (++steps % stepsPerEpoch === 0) {
        for (const leaf of full ? treeLeaves(full) : []) leaf.dispose();
        full = await trainer.gather(r.state);
        for (const leaf of treeLeaves(full)) keep(leaf); // outlives the step's scope, until the next epoch's
      }
      return { ...r, out: { ...r.out, loss: t.data()[0] } };
    } finally {
      t.dispose();
    }
  };
  const { init, gather, restore, serve, stop, step } = trainer;
  return Object.assign(ranked, { init, gather, restore, serve, stop, step, fullParams: () => full });
}

/** --devices as a number of ranks per process ("auto": one per core). */
export function parseDevicesFlag(raw: string): number {
  const n = raw === "auto" ? "auto" : Number(raw);
  if (n === "auto") return Math.min(MAX_DEVICES, availableParallelism());
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_DEVICES) || raw.trim() !== raw) {
    throw new Error(`flag --devices must be an integer from 1 to ${MAX_DEVICES} or "auto"; got ${JSON.stringify(raw)}`);
  }
  return n;
}

function report(
  flags: Flags<typeof DEMO_FLAGS>,
  a: RankArgs,
  devices: number,
  history: EpochRecord[],
  world: { environment: string; backend: string; worldSize: number },
): void {
  const summary = {
    model: a.model,
    precision: a.precision,
    ...totals(history),
    epochs: a.epochs,
    batchSize: a.batchSize,
    devices,
    strategy: a.strategy,
    ...world,
  };
  const title = `plait demo: ${demoModel(a.model, a.hidden, a.batchNorm).label}, ${world.worldSize} ranks (${a.strategy}, ${world.backend}), batch ${a.batchSize}, SGD lr ${a.lr} momentum ${a.momentum}, ${a.precision}`;
  writeReport(flags, summary, history, title);
}
