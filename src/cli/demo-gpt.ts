import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { configure } from "../core/runtime.ts";
import { scope } from "../core/scope.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { Batcher } from "../data/batcher.ts";
import { encodeNames, loadNames } from "../data/names.ts";
import { Rng } from "../data/rng.ts";
import { detectEnvironmentName } from "../env/detect.ts";
import { lineChart } from "../fit/chart.ts";
import { type ProgressMode, progressMode } from "../fit/progress.ts";
import { type EpochRecord, trainEpochs } from "../fit/trainEpochs.ts";
import type { RankContext } from "../launch/context.ts";
import type { ProcessWorld } from "../launch/external.ts";
import { spawn } from "../launch/spawn.ts";
import { type Gpt, gpt } from "../nn/gpt.ts";
import { crossEntropy } from "../ops/classification.ts";
import { valueAndGrad } from "../ops/valueAndGrad.ts";
import { adam } from "../optim/adam.ts";
import { warmupCosine } from "../optim/schedule.ts";
import type { Precision } from "../precision/policy.ts";
import { withPrecision } from "../precision/precision.ts";
import { train } from "../step/train.ts";
import type { StrategyName } from "../strategy/names.ts";
import type { Flags } from "./args.ts";
import type { DEMO_FLAGS } from "./demo-common.ts";
import { distribute, parseDevicesFlag, rankTrainer } from "./demo-distributed.ts";

// `plait demo --model gpt`: a character-level transformer on the first names of the @stdlib
// name lists, one device or N ranks (spawn), reporting validation loss in nats per character
// and ten names sampled from the model.

/** The model's shape (the demo's defaults; measured in docs/design.md). */
export const GPT_DEMO = { context: 16, dModel: 64, heads: 4, layers: 2, dropout: 0 } as const;
const PAD = -1;

interface GptArgs {
  strategy: StrategyName | undefined;
  precision: Precision;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  progress: ProgressMode;
}

interface GptResult {
  history: EpochRecord[];
  valLoss: number;
  samples: string[];
}

type Batch = { x: Tensor; y: Tensor };

/** The demo's entry for --model gpt (after demo.ts parsed the flags and decided on the world). */
export async function demoGpt(flags: Flags<typeof DEMO_FLAGS>, outer?: ProcessWorld): Promise<void> {
  if (flags["batch-norm"]) throw new Error("flag --batch-norm is for --model cnn; got --model gpt");
  const devices = parseDevicesFlag(flags.devices!);
  const distributed = outer !== undefined || devices > 1 || flags.strategy !== undefined;
  const strategy = distributed ? ((flags.strategy ?? "ddp") as StrategyName) : undefined;
  const batchSize = flags["batch-size"]!;
  const processes = outer?.processes ?? 1;
  const worldSize = processes * devices;
  if (batchSize % worldSize !== 0) {
    throw new Error(
      `flag --batch-size must be a multiple of the ranks (each rank takes batch/ranks names of every global batch); got ${batchSize} and ${worldSize}`,
    );
  }
  if (strategy === "dp" && outer)
    throw new Error("flag --strategy dp runs in one process; under mpirun or srun use ddp");
  const main = (outer?.processRank ?? 0) === 0;
  const args: GptArgs = {
    strategy,
    precision: flags.precision as Precision,
    epochs: flags.epochs!,
    batchSize,
    lr: flags.lr!,
    seed: flags.seed!,
    progress: main ? progressMode(process.stderr, flags.json) : "none",
  };
  const log = (s: string) => flags.json || !main || process.stderr.write(s);
  const names = loadNames({ seed: args.seed });
  const where = distributed ? `, ${worldSize} ranks (${strategy})` : "";
  log(
    `plait demo: GPT ${GPT_DEMO.layers}×(${GPT_DEMO.heads} heads, d ${GPT_DEMO.dModel}), context ${GPT_DEMO.context}, on ${names.train.length} names (${names.val.length} held out, vocabulary ${names.vocab.length})${where}, batch ${batchSize}, ${args.epochs} epochs, Adam lr ${args.lr}, ${args.precision}\n`,
  );
  // One kernel thread unless asked: the products are small (16×16 per head, 1,024 rows), and a
  // second pool thread measured 1.2–2× slower per epoch on the loaded 2-core machine.
  const threads = flags.threads ?? (process.env.PLAIT_THREADS ? undefined : 1);
  let result: GptResult;
  if (distributed) {
    if (threads !== undefined) process.env.PLAIT_THREADS = String(threads);
    [result] = await spawn<GptResult>(new URL(import.meta.url), "gptRank", { devices, args });
  } else {
    if (threads !== undefined) configure({ threads });
    result = await gptRank(undefined, args);
  }
  if (!main) return;
  const seconds = result.history.reduce((t, h) => t + h.seconds, 0);
  const samples = result.history.reduce((t, h) => t + h.samples, 0);
  const summary = {
    model: "gpt",
    precision: args.precision,
    valLoss: result.valLoss,
    finalLoss: result.history.at(-1)!.loss,
    samplesPerSec: samples / seconds,
    seconds,
    epochs: args.epochs,
    batchSize,
    devices,
    ...(strategy ? { strategy, worldSize, environment: outer?.env.name ?? detectEnvironmentName() } : {}),
    skippedSteps: result.history.reduce((t, h) => t + h.skipped, 0),
    names: result.samples,
  };
  const dir = resolve(flags.out!, `names-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "history.json"), `${JSON.stringify({ summary, history: result.history }, null, 2)}\n`);
  writeFileSync(
    join(dir, "names.svg"),
    lineChart(`plait demo: GPT on names, batch ${batchSize}, ${args.precision}${where}`, [
      { label: "training loss", series: [{ name: "loss", values: result.history.map((h) => h.loss) }] },
      {
        label: "validation loss (nats/char)",
        series: [{ name: "val", values: result.history.map((h) => h.metrics.valLoss) }],
      },
    ]),
  );
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stderr.write(
      `validation loss ${result.valLoss.toFixed(4)} nats/char  (${summary.samplesPerSec.toFixed(0)} names/s, ${seconds.toFixed(1)} s)\n`,
    );
    process.stderr.write(`sampled: ${result.samples.join(", ")}\n`);
    process.stderr.write(`chart: ${join(dir, "names.svg")}\n`);
  }
}

/**
 * Trains the demo's GPT: on one device when `ctx` is undefined, else as one rank of a spawned
 * world (its shard of every global batch, the strategy around the precision transform). Rank 0
 * (or the single device) evaluates after every epoch and samples ten names at the end.
 */
export async function gptRank(ctx: RankContext | undefined, a: GptArgs): Promise<GptResult> {
  const names = loadNames({ seed: a.seed });
  const model = gpt({ vocab: names.vocab.length, ...GPT_DEMO });
  const trainRows = encodeNames(names.train, names.vocab, GPT_DEMO.context, PAD);
  const valRows = encodeNames(names.val, names.vocab, GPT_DEMO.context, PAD);
  const dropRng = new Rng(a.seed, 2 + (ctx?.rank ?? 0));
  const loss = (params: Tree, b: Batch) =>
    crossEntropy(model.apply(params, b.x, { train: true, rng: dropRng }), b.y, { ignoreIndex: PAD });
  const dp = a.strategy === "dp";
  const shards = ctx && !dp ? ctx.worldSize : 1;
  const batcher = new Batcher(names.train.length, {
    batchSize: a.batchSize / shards,
    seed: a.seed,
    rank: shards > 1 ? ctx!.rank : 0,
    worldSize: shards,
  });
  const steps = batcher.batchesPerEpoch * a.epochs;
  const lr = warmupCosine({ peak: a.lr, warmupSteps: Math.min(50, steps - 1), decaySteps: steps, end: a.lr * 0.1 });
  const step = withPrecision(valueAndGrad(loss), a.precision);
  const inner = train(ctx ? distribute(a.strategy!, step) : step, adam({ lr }), ctx ? { comm: ctx.comm } : {});
  const state = await inner.init(model.init(new Rng(a.seed)) as unknown as Tree);
  if (ctx && dp && !ctx.isMain) {
    await inner.serve(state);
    return { history: [], valLoss: Number.NaN, samples: [] };
  }
  const trainer = ctx ? rankTrainer(inner, ctx.comm, batcher.batchesPerEpoch, !dp) : inner;
  const fullParams = (s: { params: Tree }) =>
    ctx ? (trainer as ReturnType<typeof rankTrainer>).fullParams()! : s.params;
  const isMain = ctx?.isMain ?? true;
  const { history, state: last } = await trainEpochs<Batch>({
    trainer,
    state,
    epochs: a.epochs,
    batches: (epoch) => {
      const order = batcher.batches(epoch - 1);
      return {
        count: order.length,
        get: (i) => rowsBatch(trainRows, order[i], GPT_DEMO.context),
        size: (b) => b.x.shape[0] * shards,
      };
    },
    evaluate: isMain ? (s) => ({ valLoss: validationLoss(model, fullParams(s), valRows) }) : undefined,
    progress: isMain ? a.progress : "none",
  });
  if (ctx && dp) await inner.stop(last);
  if (!isMain) return { history: [], valLoss: Number.NaN, samples: [] };
  const params = fullParams(last);
  return {
    history,
    valLoss: history.at(-1)!.metrics.valLoss,
    samples: sampleNames(model, params, names.vocab, 10, new Rng(a.seed, 3)),
  };
}

/** Inputs (pads read as the end marker) and targets (pads stay the ignore index) of the given rows. */
function rowsBatch(rows: Int32Array, indices: ArrayLike<number>, context: number): Batch {
  const n = indices.length;
  const width = context + 1;
  const x = new Int32Array(n * context);
  const y = new Int32Array(n * context);
  for (let r = 0; r < n; r++) {
    const row = rows.subarray(indices[r] * width, (indices[r] + 1) * width);
    for (let i = 0; i < context; i++) {
      x[r * context + i] = row[i] === PAD ? 0 : row[i];
      y[r * context + i] = row[i + 1];
    }
  }
  return {
    x: tensor(x, [n, context], { dtype: "i32" }),
    y: tensor(y, [n, context], { dtype: "i32" }),
  };
}

/** Mean cross-entropy per predicted character (end markers included) over the rows, in nats. */
export function validationLoss(model: Gpt, params: Tree, rows: Int32Array): number {
  const context = model.options.context;
  const n = rows.length / (context + 1);
  let total = 0;
  let count = 0;
  const chunk = 256;
  for (let start = 0; start < n; start += chunk) {
    const idx = Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
    scope(() => {
      const b = rowsBatch(rows, idx, context);
      const chars = (b.y.data() as Int32Array).reduce((c, v) => c + (v === PAD ? 0 : 1), 0);
      const l = crossEntropy(model.apply(params, b.x), b.y, { ignoreIndex: PAD });
      total += Number(l.data()[0]) * chars;
      count += chars;
    });
  }
  return total / count;
}

/** `count` names drawn from the model one character at a time (temperature 1) until the end marker. */
export function sampleNames(model: Gpt, params: Tree, vocab: readonly string[], count: number, rng: Rng): string[] {
  const { context } = model.options;
  const out: string[] = [];
  for (let s = 0; s < count; s++) {
    const ids = [0];
    while (ids.length < context) {
      const next = scope(() => {
        const logits = model.apply(params, tensor(Int32Array.from(ids), [1, ids.length], { dtype: "i32" }));
        const v = logits.data();
        const base = (ids.length - 1) * vocab.length;
        let m = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < vocab.length; j++) m = Math.max(m, v[base + j]);
        const p = Array.from({ length: vocab.length }, (_, j) => Math.exp(v[base + j] - m));
        let u = rng.uniform() * p.reduce((t, x) => t + x, 0);
        for (let j = 0; j < p.length; j++) {
          u -= p[j];
          if (u < 0) return j;
        }
        return p.length - 1;
      });
      if (next === 0) break;
      ids.push(next);
    }
    out.push(
      ids
        .slice(1)
        .map((i) => vocab[i])
        .join(""),
    );
  }
  return out;
}
