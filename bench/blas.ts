// Suite "blas": plait on the system BLAS (ffi/blas.ts, what `matmul` and `linear` run for f32 when
// one is installed) against numpy, whose np.matmul runs its bundled OpenBLAS:
// - GEMM GFLOP/s, f32: plait's default `matmul` (a new tensor per call, in a scope) against
//   `a @ b`, on 1 thread (PLAIT_THREADS=1 / OPENBLAS_NUM_THREADS=1) and on 2, each in a child
//   process of its own; plus plait's WASM GEMM (core.matmul) on 1 thread for scale.
// - Training samples/s: the demo's MLP (784→256→10, ReLU, softmax cross-entropy, SGD lr 0.1
//   momentum 0.9, batch 64) on the 8,000 MNIST training digits, one thread: plait's trainer (as
//   `plait demo` builds it) on the BLAS path and, for scale, on the WASM path (PLAIT_BLAS=off),
//   against the same MLP in plain numpy (bench/numpy/mlp_train.py) on the same digits.
// Every measurement runs ROUNDS times, interleaved, each in a fresh process, and the fastest
// counts (as in bench/gemm.ts: a neighbour's job on this shared 2-vCPU VM only ever slows a sample
// down): for GEMM the fastest call, for training the fastest epoch after two warm-up epochs (V8
// is still compiling in the first). OpenBLAS runs its own kernel choice (bench/lib/openblas.ts);
// the kernel each library picked and the CPU are in the results.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Batcher,
  blasStatus,
  core,
  gatherBatch,
  loadMnist,
  matmul,
  mlp,
  Rng,
  runtime,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  tensor,
  train,
  valueAndGrad,
} from "plait";
import { fastestSeconds } from "./gemm.ts";
import { gflops, randomF32, type Shape, square } from "./lib/gemm-shapes.ts";
import type { Measurement } from "./lib/measure.ts";
import { machineOpenblasEnv } from "./lib/openblas.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const ROUNDS = 5;
const EPOCHS = 10;
const WARMUP_EPOCHS = 2;

const SHAPES: Shape[] = [
  square(256),
  square(512),
  square(1024),
  { name: "demo fwd 64×784·784×256 (NN)", m: 64, n: 256, k: 784, transA: false, transB: false },
  { name: "demo dw (64×784)ᵀ·64×256 (TN)", m: 784, n: 256, k: 64, transA: true, transB: false },
  { name: "demo dh 64×10·(256×10)ᵀ (NT)", m: 64, n: 256, k: 10, transA: false, transB: true },
];

const SELF = fileURLToPath(import.meta.url);
const TRAINER_PY = fileURLToPath(new URL("../../bench/numpy/mlp_train.py", import.meta.url));

/** Child: GFLOP/s per shape of plait's default matmul (and, with --wasm, core.matmul on 1 thread). */
async function gemmChild(wasm: boolean): Promise<void> {
  const rates: number[] = [];
  for (const s of SHAPES) {
    const a = tensor(randomF32(s.m * s.k, 1), s.transA ? [s.k, s.m] : [s.m, s.k]);
    const b = tensor(randomF32(s.k * s.n, 2), s.transB ? [s.n, s.k] : [s.k, s.n]);
    const opts = { transA: s.transA, transB: s.transB };
    // a new product per call, disposed (a scope would hand its result on, never free it)
    const fn = wasm ? () => core.matmul(a, b, { ...opts, threads: 1 }).dispose() : () => matmul(a, b, opts).dispose();
    rates.push(gflops(s, await fastestSeconds(fn)));
  }
  const st = blasStatus();
  console.log(
    JSON.stringify({ rates, threads: runtime().threads, blas: st.inUse, corename: st.corename, config: st.config }),
  );
}

/** numpy's GFLOP/s per shape (`a @ b`, transposes as views), and the kernel its OpenBLAS picked. */
function numpyGemm(threads: number): { rates: number[]; corename: string; config: string } | undefined {
  const shapes = JSON.stringify(SHAPES.map((s) => [s.m, s.n, s.k, s.transA, s.transB]));
  const script = `
import json, time, numpy as np
${NUMPY_OPENBLAS}
out = []
rng = np.random.default_rng(0)
for m, n, k, ta, tb in json.loads('${shapes}'):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    A, B = (a.T if ta else a), (b.T if tb else b)
    reps = max(3, int(4e8 / (2 * m * n * k)))
    best = min(timed(A, B, reps) for _ in range(7))
    out.append(2 * m * n * k / best / 1e9)
print(json.dumps({"rates": out, **openblas_info()}))
`;
  return python(["-c", script], { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) });
}

/** Python helpers: a timed loop, and numpy's OpenBLAS config and kernel (scipy-openblas symbols). */
const NUMPY_OPENBLAS = `
import ctypes, glob, os
def timed(A, B, reps):
    t = time.perf_counter()
    for _ in range(reps): A @ B
    return (time.perf_counter() - t) / reps
def openblas_info():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libscipy_openblas*.so*"))
    info = {"config": "unknown", "corename": "unknown"}
    for path in libs:
        lib = ctypes.CDLL(path)
        for key, names in (("config", ("scipy_openblas_get_config64_", "openblas_get_config")), ("corename", ("scipy_openblas_get_corename64_", "openblas_get_corename"))):
            for name in names:
                if hasattr(lib, name):
                    f = getattr(lib, name); f.restype = ctypes.c_char_p
                    info[key] = f().decode().strip()
                    break
    return info
`;

function python<T>(args: string[], env: Record<string, string>): T | undefined {
  try {
    const out = execFileSync("python3", args, { encoding: "utf8", env: { ...process.env, ...env } });
    return JSON.parse(out.trim().split("\n").at(-1)!);
  } catch (e) {
    console.warn(`numpy peer did not run: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

/** Child: the demo's training on one thread; prints samples/s per epoch. Writes the digits for numpy when asked. */
async function trainChild(dataFile?: string): Promise<void> {
  const data = loadMnist();
  if (dataFile) {
    const { images, labels, n } = data.train;
    const bytes = new Uint8Array(n * 784 * 4 + n * 4);
    bytes.set(new Uint8Array(images.buffer, images.byteOffset, n * 784 * 4), 0);
    bytes.set(new Uint8Array(Int32Array.from(labels).buffer), n * 784 * 4);
    writeFileSync(dataFile, bytes);
  }
  const model = mlp([784, 256, 10]);
  const loss = (p: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(p, b.x), b.y);
  const trainer = train(valueAndGrad(loss), sgd({ lr: 0.1, momentum: 0.9 }));
  let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
  const batcher = new Batcher(data.train.n, { batchSize: 64, seed: 0 });
  const rates: number[] = [];
  let samples = 0;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const t0 = performance.now();
    samples = 0;
    for (const idx of batcher.batches(epoch)) {
      const { images, labels } = gatherBatch(data.train, idx);
      ({ state } = await trainer(state, { x: images, y: labels }));
      samples += idx.length;
      images.dispose();
      labels.dispose();
    }
    rates.push(samples / ((performance.now() - t0) / 1000));
  }
  const st = blasStatus();
  console.log(JSON.stringify({ rates, n: data.train.n, blas: st.inUse }));
}

/** The CPU as lscpu names it: model, family/model numbers, and whether it has AVX-512 (OpenBLAS's kernel choice). */
function cpuInfo(): Record<string, unknown> {
  try {
    const text = readFileSync("/proc/cpuinfo", "utf8");
    const field = (name: string) => new RegExp(`^${name}\\s*: (.*)$`, "m").exec(text)?.[1];
    const flags = field("flags") ?? "";
    return {
      model: field("model name"),
      family: Number(field("cpu family")),
      modelNumber: Number(field("model")),
      cores: cpus().length,
      avx2: /\bavx2\b/.test(flags),
      avx512f: /\bavx512f\b/.test(flags),
    };
  } catch {
    return { model: cpus()[0]?.model };
  }
}

/** Runs this file as a child with `args` and `env`; returns the JSON line it prints. */
function child<T>(args: string[], env: Record<string, string>): T {
  const out = execFileSync(process.execPath, [SELF, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

const steady = (rates: number[]) => Math.max(...rates.slice(WARMUP_EPOCHS));

export async function run(): Promise<void> {
  const loadBefore = loadavg()[0];
  const best = new Map<string, number[]>(); // impl → per-shape best GFLOP/s
  const keep = (impl: string, rates: number[] | undefined) => {
    if (!rates) return;
    const prev = best.get(impl);
    best.set(
      impl,
      rates.map((r, i) => Math.max(r, prev?.[i] ?? 0)),
    );
  };
  let plaitKernel: { corename: string | null; config: string | null; blas: boolean } | undefined;
  let numpyKernel: { corename: string; config: string } | undefined;
  for (let r = 0; r < ROUNDS; r++) {
    for (const threads of [1, 2]) {
      const p = child<{ rates: number[]; blas: boolean; corename: string | null; config: string | null }>(["--gemm"], {
        PLAIT_THREADS: String(threads),
      });
      plaitKernel = { corename: p.corename, config: p.config, blas: p.blas };
      keep(`plait matmul (BLAS), ${threads} thread${threads > 1 ? "s" : ""}`, p.rates);
      const np = numpyGemm(threads);
      if (np) numpyKernel = { corename: np.corename, config: np.config };
      keep(`numpy, ${threads} thread${threads > 1 ? "s" : ""}`, np?.rates);
    }
    keep(
      "plait core.matmul (WASM), 1 thread",
      child<{ rates: number[] }>(["--gemm", "--wasm"], { PLAIT_THREADS: "1" }).rates,
    );
  }
  const rows: Measurement[] = [];
  for (const [impl, rates] of best) {
    for (const [i, s] of SHAPES.entries()) rows.push({ case: s.name, impl, value: rates[i], unit: "GFLOP/s" });
  }

  // training: plait BLAS, numpy, plait WASM, interleaved
  const dir = mkdtempSync(join(tmpdir(), "plait-bench-blas-"));
  const dataFile = join(dir, "mnist-train.bin");
  const trainBest = new Map<string, number>();
  const keepTrain = (impl: string, rate: number | undefined) => {
    if (rate !== undefined) trainBest.set(impl, Math.max(rate, trainBest.get(impl) ?? 0));
  };
  for (let r = 0; r < ROUNDS; r++) {
    const p = child<{ rates: number[]; n: number; blas: boolean }>(["--train", ...(r === 0 ? [dataFile] : [])], {
      PLAIT_THREADS: "1",
    });
    if (!p.blas)
      throw new Error("the BLAS path is not in use: install OpenBLAS (apt-get install libopenblas0-pthread)");
    keepTrain("plait (BLAS)", steady(p.rates));
    const np = python<{ samplesPerSec: number[] }>([TRAINER_PY, dataFile, String(p.n), String(EPOCHS)], {
      OPENBLAS_NUM_THREADS: "1",
      OMP_NUM_THREADS: "1",
    });
    keepTrain("numpy", np ? steady(np.samplesPerSec) : undefined);
    if (r === 0)
      keepTrain(
        "plait (WASM GEMM)",
        steady(child<{ rates: number[] }>(["--train"], { PLAIT_THREADS: "1", PLAIT_BLAS: "off" }).rates),
      );
  }
  const trainCase = "demo MLP 784-256-10, batch 64, 1 thread";
  for (const [impl, value] of trainBest) rows.push({ case: trainCase, impl, value, unit: "samples/s" });
  const loadAfter = loadavg()[0];

  const gemm = (c: string, impl: string) => rows.find((x) => x.case === c && x.impl === impl)?.value ?? Number.NaN;
  const checks: RatioCheck[] = [
    {
      name: "f32 1024³ 1 thread: plait matmul (BLAS) / numpy",
      ratio: gemm("1024³", "plait matmul (BLAS), 1 thread") / gemm("1024³", "numpy, 1 thread"),
      target: 0.9,
    },
    {
      name: "f32 1024³ plait matmul (BLAS): 2 threads / 1 thread",
      ratio: gemm("1024³", "plait matmul (BLAS), 2 threads") / gemm("1024³", "plait matmul (BLAS), 1 thread"),
      target: 1.8,
    },
    {
      name: "f32 1024³ numpy: 2 threads / 1 thread (the same ratio for the peer, info)",
      ratio: gemm("1024³", "numpy, 2 threads") / gemm("1024³", "numpy, 1 thread"),
      target: 1.8,
    },
    {
      name: "demo training, 1 thread: plait (BLAS) / numpy",
      ratio: (trainBest.get("plait (BLAS)") ?? Number.NaN) / (trainBest.get("numpy") ?? Number.NaN),
      target: 1,
    },
  ];
  report("blas", rows, checks, {
    cpu: cpuInfo(),
    loadAverage: [loadBefore, loadAfter],
    machineOpenblasEnv,
    plaitBlas: plaitKernel,
    numpyOpenblas: numpyKernel,
    timing: `best of ${ROUNDS} interleaved rounds, each in a fresh process; GEMM: the fastest call of a ≥ 400 ms tinybench run (plait, a new tensor per call) or of 7 batches (numpy, a @ b); training: the fastest of ${EPOCHS - WARMUP_EPOCHS} epochs after ${WARMUP_EPOCHS} warm-up epochs (8,000 samples each)`,
  });
  console.log(`load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`);
}

if (process.argv.includes("--gemm")) {
  await gemmChild(process.argv.includes("--wasm"));
  process.exit(0);
}
if (process.argv.includes("--train")) {
  const i = process.argv.indexOf("--train");
  await trainChild(process.argv[i + 1]);
  process.exit(0);
}
