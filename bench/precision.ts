// Suite "precision": the training step of the MNIST MLP (784→256→10, batch 64, SGD with
// momentum) under each of Lightning's precisions, against 32-true in the same run, on one
// kernel thread; and the parameter + gradient bytes each precision holds. The steps run in a
// child process started with PLAIT_THREADS=1 (the thread count is fixed before the first kernel
// call). The time is the process's CPU time (user + system) per step, which on one thread is
// the step's own time and, unlike wall time, does not count the time other processes hold the
// core; precisions are interleaved in blocks of steps, round after round, so that what noise
// remains (shared caches) hits them alike; each precision's time is the median over its blocks.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  gatherBatch,
  loadMnist,
  mlp,
  PRECISIONS,
  type Precision,
  Rng,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  train,
  transform,
  treeLeaves,
  valueAndGrad,
  withPrecision,
} from "plait";
import type { Measurement } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const BLOCK = 20; // steps per timed block
const ROUNDS = 25;
const WARMUP = 40;

interface Batch {
  x: Tensor;
  y: Tensor;
}

interface Result {
  precision: string;
  msPerStep: number;
  paramBytes: number;
  gradBytes: number;
}

const VARIANTS: { name: string; precision: Precision; masterWeights?: boolean }[] = [
  ...PRECISIONS.map((precision) => ({ name: precision, precision })),
  { name: "bf16-true + master weights", precision: "bf16-true", masterWeights: true },
];

/** Runs in the child: every variant's step time and bytes. */
async function measure(): Promise<Result[]> {
  const data = loadMnist({ train: 1024, test: 0 });
  const model = mlp([784, 256, 10]);
  const batches: Batch[] = Array.from({ length: 16 }, (_, i) => {
    const idx = Int32Array.from({ length: 64 }, (_, j) => i * 64 + j);
    const { images, labels } = gatherBatch(data.train, idx);
    return { x: images, y: labels };
  });
  const loss = valueAndGrad((p: Tree, b: Batch) => softmaxCrossEntropy(model.apply(p, b.x), b.y));
  const runs = await Promise.all(
    VARIANTS.map(async (v) => {
      let gradBytes = 0;
      const inner = withPrecision(loss, v.precision, v.masterWeights ? { masterWeights: true } : {});
      // records the bytes of the grads the precision hands the optimizer
      const step = transform(inner, {
        name: "recordGradBytes",
        update(out) {
          gradBytes = treeLeaves(out.grads).reduce((n, g) => n + g.byteLength, 0);
          return out;
        },
      });
      const trainer = train(step, sgd({ lr: 0.01, momentum: 0.9 }));
      let state = await trainer.init(model.init(new Rng(1)) as unknown as Tree);
      let at = 0;
      const steps = async (n: number) => {
        for (let i = 0; i < n; i++) state = (await trainer(state, batches[at++ % batches.length])).state;
      };
      const bytes = () => treeLeaves(state.params).reduce((n, t) => n + t.byteLength, 0);
      return { v, steps, bytes, grads: () => gradBytes, blocks: [] as number[] };
    }),
  );
  for (const r of runs) await r.steps(WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of runs) {
      const t0 = process.cpuUsage();
      await r.steps(BLOCK);
      const t = process.cpuUsage(t0);
      r.blocks.push((t.user + t.system) / 1000 / BLOCK);
    }
  }
  return runs.map((r) => ({
    precision: r.v.name,
    msPerStep: median(r.blocks),
    paramBytes: r.bytes(),
    gradBytes: r.grads(),
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export async function run(): Promise<void> {
  const json = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child"], {
    encoding: "utf8",
    env: { ...process.env, PLAIT_THREADS: "1" },
    maxBuffer: 1 << 20,
  });
  const results = JSON.parse(json) as Result[];
  const base = results.find((r) => r.precision === "32-true")!;
  const rows: Measurement[] = [];
  for (const r of results) {
    rows.push({
      case: "step (CPU time), MLP 784-256-10, batch 64, 1 thread",
      impl: r.precision,
      value: r.msPerStep,
      unit: "ms",
    });
  }
  for (const r of results) {
    rows.push({ case: "params + grads", impl: r.precision, value: (r.paramBytes + r.gradBytes) / 1024, unit: "KiB" });
  }
  const checks: RatioCheck[] = ["16-mixed", "bf16-mixed"].map((p) => ({
    name: `${p} step time / 32-true`,
    ratio: results.find((r) => r.precision === p)!.msPerStep / base.msPerStep,
    target: 1.1,
    better: "lower",
  }));
  for (const p of ["16-true", "bf16-true"]) {
    const r = results.find((x) => x.precision === p)!;
    checks.push({
      name: `${p} params + grads bytes / 32-true`,
      ratio: (r.paramBytes + r.gradBytes) / (base.paramBytes + base.gradBytes),
      target: 0.5,
      better: "lower",
    });
  }
  report("precision", rows, checks, {
    model: "MLP 784-256-10 (relu), SGD momentum 0.9, batch 64",
    threads: 1,
    timing: `process CPU time; ${ROUNDS} rounds × ${BLOCK} steps per precision, interleaved; median block`,
    bytes: Object.fromEntries(results.map((r) => [r.precision, { params: r.paramBytes, grads: r.gradBytes }])),
  });
}

if (process.argv.includes("--child")) process.stdout.write(JSON.stringify(await measure()));
