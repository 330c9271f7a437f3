// Suite "train-scaling": samples/s of training the demo's MLP (784→256→10, relu, softmax
// cross-entropy, SGD lr 0.1 momentum 0.9) on the 8,000 MNIST training digits, at global batches
// 64 (the demo's), 256 and 1024, measured in the same run five ways, each in worker threads
// started by spawn():
// - 1 rank, 1 kernel thread (PLAIT_THREADS=1): the scaling baseline;
// - 1 rank, 2 kernel threads (the single-device demo: the kernel pool splits each op);
// - 2 ranks under withDDP, 1 kernel thread each, half the global batch per rank per step;
// - 2 ranks under withZeRO stage 2, likewise (each rank updates half the params);
// - 2 ranks that never communicate (each trains alone on its half of every batch): the most two
//   threads of this machine do on this work, the ceiling for any strategy.
// Each configuration trains EPOCHS epochs, ROUNDS times interleaved (so load from other processes
// falls on all of them alike). Two figures per configuration: the steady state (the median epoch
// after the first WARMUP epochs of each round: V8 keeps compiling for seconds, and while both
// cores run ranks each background compile preempts one of them), and the whole run (all EPOCHS
// epochs, best round: what a short job sees, start-up and warm-up included). The 2-rank / 1-rank
// ratio is reported at each batch for both. The CPU time other processes took during the run is
// printed (from /proc/stat): on a shared 2-core machine the ratios only mean something when that
// is near 0. See docs/design.md, "Small-batch scaling", for where a rank's step goes.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import {
  Batcher,
  type Comm,
  gatherBatch,
  loadMnist,
  mlp,
  type RankContext,
  Rng,
  scope,
  sgd,
  softmaxCrossEntropy,
  spawn,
  type Tensor,
  type Tree,
  train,
  valueAndGrad,
  withDDP,
  withZeRO,
} from "plait";
import type { Measurement } from "./lib/measure.ts";
import { report } from "./lib/report.ts";

const BATCHES = [64, 256, 1024];
const EPOCHS = 12;
const WARMUP = 6;
const ROUNDS = 3;

interface Args {
  strategy: "none" | "ddp" | "zero2";
  epochs: number;
  batch: number;
}

/** One rank: trains `epochs` epochs on its shard of every global batch; rank 0 returns its epoch times. */
export async function scalingRank(ctx: RankContext, a: Args): Promise<number[]> {
  const data = loadMnist({ seed: 0 });
  const model = mlp([784, 256, 10]);
  const loss = valueAndGrad((p: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(p, b.x), b.y));
  const comm: Comm = ctx.comm;
  const step = a.strategy === "zero2" ? withZeRO(loss, { stage: 2 }) : a.strategy === "ddp" ? withDDP(loss) : loss;
  const trainer = train(step, sgd({ lr: 0.1, momentum: 0.9 }), { comm });
  let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
  const batcher = new Batcher(data.train.n, {
    batchSize: a.batch / ctx.worldSize,
    seed: 0,
    rank: ctx.rank,
    worldSize: ctx.worldSize,
  });
  const seconds: number[] = [];
  for (let epoch = 0; epoch < a.epochs; epoch++) {
    const t0 = performance.now();
    for (const idx of batcher.batches(epoch)) {
      await scope(async () => {
        const { images, labels } = gatherBatch(data.train, idx);
        ({ state } = await trainer(state, { x: images, y: labels }));
      });
    }
    seconds.push((performance.now() - t0) / 1000);
  }
  return seconds;
}

const CONFIGS = [
  { impl: "1 rank × 1 thread", devices: 1, threads: "1", strategy: "none" },
  { impl: "1 rank × 2 threads", devices: 1, threads: "2", strategy: "none" },
  { impl: "2 ranks (ddp) × 1 thread", devices: 2, threads: "1", strategy: "ddp" },
  { impl: "2 ranks (zero2) × 1 thread", devices: 2, threads: "1", strategy: "zero2" },
  { impl: "2 ranks, no communication × 1 thread", devices: 2, threads: "1", strategy: "none" },
] as const;

/** CPU seconds used so far by every process of this machine, and by this one (Linux; 0 elsewhere). */
function cpuTicks(): { all: number; mine: number } {
  try {
    const all = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const self = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return {
      all: (all[0] + all[1] + all[2] + all[5] + all[6]) / 100,
      mine: (Number(self[11]) + Number(self[12])) / 100,
    };
  } catch {
    return { all: 0, mine: 0 };
  }
}

export async function run(): Promise<void> {
  const loadBefore = loadavg()[0];
  const ticks0 = cpuTicks();
  const wall0 = performance.now();
  /** Per batch, per config: steady-state epoch times (all rounds), and each round's whole-run time. */
  const steady = BATCHES.map(() => CONFIGS.map(() => [] as number[]));
  const whole = BATCHES.map(() => CONFIGS.map(() => [] as number[]));
  const saved = process.env.PLAIT_THREADS;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [b, batch] of BATCHES.entries()) {
        for (const [i, c] of CONFIGS.entries()) {
          process.env.PLAIT_THREADS = c.threads; // each rank's kernel pool
          const ranks = await spawn<number[]>(new URL(import.meta.url), "scalingRank", {
            devices: c.devices,
            args: { strategy: c.strategy, epochs: EPOCHS, batch } satisfies Args,
          });
          // the slowest rank's time per epoch (ranks that never communicate finish apart)
          const times = ranks[0].map((_, e) => Math.max(...ranks.map((r) => r[e])));
          steady[b][i].push(...times.slice(WARMUP));
          whole[b][i].push(times.reduce((x, y) => x + y, 0));
        }
      }
    }
  } finally {
    if (saved === undefined) delete process.env.PLAIT_THREADS;
    else process.env.PLAIT_THREADS = saved;
  }
  const loadAfter = loadavg()[0];
  const ticks1 = cpuTicks();
  const wall = (performance.now() - wall0) / 1000;
  const othersCores = (ticks1.all - ticks0.all - (ticks1.mine - ticks0.mine)) / wall;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const spread = (xs: number[]) => Math.max(...xs) / Math.min(...xs);
  const rows: Measurement[] = BATCHES.flatMap((batch, b) =>
    CONFIGS.flatMap((c, i) => [
      {
        case: `MLP 784-256-10, global batch ${batch}, steady state`,
        impl: c.impl,
        value: 8000 / median(steady[b][i]),
        unit: "samples/s",
      },
      {
        case: `MLP 784-256-10, global batch ${batch}, whole run (${EPOCHS} epochs, best round)`,
        impl: c.impl,
        value: (8000 * EPOCHS) / Math.min(...whole[b][i]),
        unit: "samples/s",
      },
    ]),
  );
  const value = (batch: number, i: number, kind: 0 | 1) =>
    rows[(BATCHES.indexOf(batch) * CONFIGS.length + i) * 2 + kind].value;
  const [ONE, POOL, DDP, ZERO2, ALONE] = [0, 1, 2, 3, 4];
  const checks = BATCHES.flatMap((batch) => {
    const at = `, batch ${batch}`;
    return [
      {
        name: `2 ranks (ddp) vs 1 rank × 1 thread${at}`,
        ratio: value(batch, DDP, 0) / value(batch, ONE, 0),
        target: 1.8,
      },
      {
        name: `2 ranks (ddp) vs 1 rank × 1 thread${at}, whole run (info)`,
        ratio: value(batch, DDP, 1) / value(batch, ONE, 1),
        target: 1.8,
      },
      {
        name: `2 ranks (ddp) vs 1 rank × 2 threads${at} (info)`,
        ratio: value(batch, DDP, 0) / value(batch, POOL, 0),
        target: 1,
      },
      {
        name: `2 ranks (zero2) vs 1 rank × 1 thread${at} (info)`,
        ratio: value(batch, ZERO2, 0) / value(batch, ONE, 0),
        target: 1.8,
      },
      {
        name: `2 ranks without communication vs 1 rank × 1 thread${at} (the ceiling, info)`,
        ratio: value(batch, ALONE, 0) / value(batch, ONE, 0),
        target: 1.8,
      },
      {
        name: `2 ranks (ddp) vs 2 ranks without communication${at} (DDP's own cost, info)`,
        ratio: value(batch, DDP, 0) / value(batch, ALONE, 0),
        target: 0.9,
      },
    ];
  });
  // how much the steady-state epochs of each configuration varied (max / min), as a noise gauge
  const noise = Math.max(...steady.flat().map(spread));
  report("train-scaling", rows, checks, {
    loadBefore,
    loadAfter,
    otherProcessesCores: Number(othersCores.toFixed(2)),
    steadyEpochSpreadMax: Number(noise.toFixed(2)),
    epochs: EPOCHS,
    warmup: WARMUP,
    rounds: ROUNDS,
  });
  console.log(
    `load average (1 min): ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; other processes used ${othersCores.toFixed(2)} cores on average during the run; steady-state epochs of one configuration varied up to ${noise.toFixed(2)}× (max/min)`,
  );
}
