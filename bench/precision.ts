// Suite "precision": the training step of the MNIST MLP (784→256→10, batch 64, SGD with
// momentum) under each of Lightning's precisions, against 32-true in the same run, on one
// kernel thread; and the parameter + gradient bytes each precision holds. The steps run in a
// child process started with PLAIT_THREADS=1 (the thread count is fixed before the first kernel
// call). The time is the process's CPU time (user + system) per step, which on one thread is
// the step's own time and, unlike wall time, does not count the time other processes hold the
// core; precisions are interleaved in blocks of steps, round after round, so that what noise
// remains (shared caches) hits them alike; each precision's time is the median over its blocks,
// and its ratio to 32-true the median over rounds of the two blocks' ratio in that round.
// Two children: one with the GEMM the process picks (the system BLAS where one is installed,
// where a half product multiplies f32 operands holding the half values) and one with
// PLAIT_BLAS=off (the WASM GEMM, whose packing widens half operands). Each child also times the
// passes mixed precision adds to a step at this model's sizes (the breakdown in docs/design.md).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  blasStatus,
  castInto,
  gatherBatch,
  loadMnist,
  mlp,
  PRECISIONS,
  type Precision,
  Rng,
  runtime,
  sgd,
  softmaxCrossEntropy,
  Tensor,
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
// Warm-up: rounds of WARM_STEPS steps per precision until the process's CPU time stays within
// 3% of the wall time for SETTLED rounds in a row (V8's background compiler and GC threads,
// which process CPU time counts, have gone quiet), at least MIN_WARM and at most MAX_WARM steps
// per precision. A fixed 40 steps left those threads busy for the first ~2000 steps of a
// process and charged their time to whichever precision was running.
const WARM_STEPS = 50;
const MIN_WARM = 300;
const MAX_WARM = 3000;
const SETTLED = 3;

interface Batch {
  x: Tensor;
  y: Tensor;
}

interface Result {
  precision: string;
  msPerStep: number;
  /**
   * The median over rounds of this precision's block time over 32-true's block in the same
   * round: paired, so that a drift of the machine's speed during the run cancels.
   */
  vs32: number;
  paramBytes: number;
  gradBytes: number;
}

interface Child {
  gemm: string;
  results: Result[];
  /** CPU time of one pass that mixed precision adds to a step, in ms, by name. */
  passes: Record<string, number>;
  /** Warm-up steps per precision before the timed blocks. */
  warmSteps: number;
}

const VARIANTS: { name: string; precision: Precision; masterWeights?: boolean }[] = [
  ...PRECISIONS.map((precision) => ({ name: precision, precision })),
  { name: "bf16-true + master weights", precision: "bf16-true", masterWeights: true },
];

/** Runs in the child: every variant's step time and bytes, and the extra passes' times. */
async function measure(): Promise<Child> {
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
  let warm = 0;
  for (let settled = 0; warm < MIN_WARM || (settled < SETTLED && warm < MAX_WARM); warm += WARM_STEPS) {
    const t0 = process.cpuUsage();
    const w0 = performance.now();
    for (const r of runs) await r.steps(WARM_STEPS);
    const t = process.cpuUsage(t0);
    settled = (t.user + t.system) / 1000 <= 1.03 * (performance.now() - w0) ? settled + 1 : 0;
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of runs) {
      const t0 = process.cpuUsage();
      await r.steps(BLOCK);
      const t = process.cpuUsage(t0);
      r.blocks.push((t.user + t.system) / 1000 / BLOCK);
    }
  }
  const base = runs.find((r) => r.v.name === "32-true")!;
  const results = runs.map((r) => ({
    precision: r.v.name,
    msPerStep: median(r.blocks),
    vs32: median(r.blocks.map((t, i) => t / base.blocks[i])),
    paramBytes: r.bytes(),
    gradBytes: r.grads(),
  }));
  const blas = blasStatus();
  const gemm = blas.inUse ? `BLAS (${blas.vendor ?? "system"})` : "WASM GEMM";
  return { gemm, results, passes: passes(), warmSteps: warm };
}

/**
 * The passes over data that 16-mixed / bf16-mixed add to this model's step, each timed alone
 * (median of blocks of CPU time): the weight's compute copy (784×256) — cast to half for the
 * WASM GEMM, rounded through half into f32 for the BLAS (the HalfCopy is then never cast) —, the
 * batch (64×784) cast or rounded likewise, and the unscale + finite check of the weight's
 * gradient (16-mixed). The WASM path's widening inside the GEMM packing is not a pass of its own.
 */
function passes(): Record<string, number> {
  const { k } = runtime();
  const w = new Tensor([784, 256], "f32");
  const x = new Tensor([64, 784], "f32");
  const f32 = new Tensor([784, 256], "f32");
  const flag = new Tensor([1], "i32");
  for (const t of [w, x]) (t.data() as Float32Array).set(Array.from({ length: t.size }, (_, i) => Math.sin(i) * 0.05));
  const out: Record<string, number> = {};
  for (const half of ["f16", "bf16"] as const) {
    const copy = new Tensor([784, 256], half);
    const xh = new Tensor([64, 784], half);
    const cases: [string, () => void][] = [
      [`${half}: cast weight f32→${half} (compute copy, WASM GEMM)`, () => castInto(w, copy)],
      [
        `${half}: round weight through ${half} (compute copy, BLAS)`,
        () => k.as[`f32_round_${half}`](w.ptr, f32.ptr, w.size),
      ],
      [`${half}: cast batch f32→${half} (WASM GEMM)`, () => castInto(x, xh)],
      [`${half}: round batch through ${half} (BLAS)`, () => k.as[`f32_round_${half}`](x.ptr, f32.ptr, x.size)],
    ];
    if (half === "f16")
      cases.push([
        "f16: unscale + finite check, weight grad",
        () => k.as.unscale_f32(w.ptr, f32.ptr, w.size, 1, flag.ptr),
      ]);
    for (const [name, fn] of cases) {
      const blocks: number[] = [];
      for (let round = 0; round < 15; round++) {
        fn();
        const t0 = process.cpuUsage();
        for (let i = 0; i < 40; i++) fn();
        const t = process.cpuUsage(t0);
        blocks.push((t.user + t.system) / 1000 / 40);
      }
      out[name] = median(blocks);
    }
    copy.dispose();
    xh.dispose();
  }
  for (const t of [w, x, f32, flag]) t.dispose();
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function child(env: Record<string, string>): Child {
  const json = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child"], {
    encoding: "utf8",
    env: { ...process.env, PLAIT_THREADS: "1", ...env },
    maxBuffer: 1 << 20,
  });
  return JSON.parse(json) as Child;
}

export async function run(): Promise<void> {
  const picked = child({});
  const runs = picked.gemm.startsWith("BLAS") ? [picked, child({ PLAIT_BLAS: "off" })] : [picked];
  const results = picked.results;
  const base = results.find((r) => r.precision === "32-true")!;
  const rows: Measurement[] = [];
  const checks: RatioCheck[] = [];
  for (const c of runs) {
    const base = c.results.find((r) => r.precision === "32-true")!;
    for (const r of c.results) {
      rows.push({
        case: `step (CPU time), MLP 784-256-10, batch 64, 1 thread, ${c.gemm}`,
        impl: r.precision,
        value: r.msPerStep,
        unit: "ms",
      });
    }
    for (const p of ["16-mixed", "bf16-mixed"]) {
      checks.push({
        name: `${p} step time / 32-true (${c.gemm})`,
        ratio: c.results.find((r) => r.precision === p)!.vs32,
        target: 1.1,
        better: "lower",
      });
    }
    for (const [name, ms] of Object.entries(c.passes)) {
      rows.push({ case: `one pass / the 32-true step (${c.gemm})`, impl: name, value: ms / base.msPerStep, unit: "×" });
    }
  }
  for (const r of results) {
    rows.push({ case: "params + grads", impl: r.precision, value: (r.paramBytes + r.gradBytes) / 1024, unit: "KiB" });
  }
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
    timing: `process CPU time; after ${runs.map((c) => c.warmSteps).join(" / ")} warm-up steps per precision (until CPU time ≈ wall time), ${ROUNDS} rounds × ${BLOCK} steps per precision, interleaved; median block; ratios: median over rounds of the block time over 32-true's in the same round`,
    gemm: runs.map((c) => c.gemm),
    passesMs: Object.fromEntries(runs.map((c) => [c.gemm, c.passes])),
    bytes: Object.fromEntries(results.map((r) => [r.precision, { params: r.paramBytes, grads: r.gradBytes }])),
  });
}

if (process.argv.includes("--child")) process.stdout.write(JSON.stringify(await measure()));
