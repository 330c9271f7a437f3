// Suite "reduce": GB/s of the reductions (sum, maxAbs, sumSquares, allFinite) and of add
// (c = a + b) on 64 MiB of f32, one thread inside WASM. GB/s counts bytes read + bytes written:
// a reduction moves 64 MiB, add 192 MiB (two read, one written), a copy of 64 MiB 128 MiB.
// Peers measured in the same run: `memory.copy` of the 64 MiB inside WASM (the speed of
// light), TypedArray.prototype.set of the same bytes, and a plain-JS loop doing the same work.
// Also the speedup of add and sum split over two pool threads against one.
import { runtime } from "plait";
import { type Measurement, medianSeconds } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const N = 16 << 20; // elements
const BYTES = N * 4;

function jsSum(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

function jsSumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

function jsMaxAbs(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

function jsAllFinite(x: Float32Array): boolean {
  let ok = true;
  for (let i = 0; i < x.length; i++) ok = ok && Number.isFinite(x[i]);
  return ok;
}

function jsAdd(a: Float32Array, b: Float32Array, c: Float32Array): void {
  for (let i = 0; i < c.length; i++) c[i] = a[i] + b[i];
}

export async function run(): Promise<void> {
  const { arena, k, memory, pool, variant } = runtime();
  const ptrA = arena.alloc(BYTES);
  const ptrB = arena.alloc(BYTES);
  const ptrC = arena.alloc(BYTES);
  const slots = arena.alloc(16); // two f64 partial results
  const buf = memory.buffer;
  const a = new Float32Array(buf, ptrA, N);
  const b = new Float32Array(buf, ptrB, N);
  const c = new Float32Array(buf, ptrC, N);
  for (let i = 0; i < N; i++) {
    a[i] = (Math.random() - 0.5) * 8; // normal numbers: subnormals stall x86 float units
    b[i] = (Math.random() - 0.5) * 8;
  }
  c.fill(0); // touch every page before timing
  const gb = (bytes: number, seconds: number) => bytes / seconds / 1e9;
  const rows: Measurement[] = [];
  const row = (name: string, impl: string, value: number) => rows.push({ case: name, impl, value, unit: "GB/s" });

  const copy = async () => gb(2 * BYTES, await medianSeconds(() => k.as.copy_bytes(ptrC, ptrA, BYTES)));
  const copyFirst = await copy();
  const setRate = gb(2 * BYTES, await medianSeconds(() => c.set(a)));

  // name, bytes moved, WASM kernel on one thread, plain-JS loop
  const cases: [string, number, () => unknown, () => unknown][] = [
    ["sum", BYTES, () => k.as.sum_f32(ptrA, N, slots), () => jsSum(a)],
    ["maxAbs", BYTES, () => k.as.max_abs_f32(ptrA, N, slots), () => jsMaxAbs(a)],
    ["sumSquares", BYTES, () => k.as.sum_squares_f32(ptrA, N, slots), () => jsSumSquares(a)],
    ["allFinite", BYTES, () => k.as.all_finite_f32(ptrA, N, slots), () => jsAllFinite(a)],
    ["add c=a+b", 3 * BYTES, () => k.as.add_f32(ptrA, ptrB, ptrC, N), () => jsAdd(a, b, c)],
  ];
  const wasm: Record<string, number> = {};
  const js: Record<string, number> = {};
  for (const [name, bytes, kernel, loop] of cases) {
    wasm[name] = gb(bytes, await medianSeconds(kernel));
    js[name] = gb(bytes, await medianSeconds(loop, 200));
    row(name, "plait wasm (1 thread)", wasm[name]);
    row(name, "plain JS loop", js[name]);
  }
  // the slower of two copy measurements would flatter the kernels; take the faster
  const copyRate = Math.max(copyFirst, await copy());
  row("copy 64 MiB", "memory.copy (wasm)", copyRate);
  row("copy 64 MiB", "TypedArray.set", setRate);

  // Two threads, each on one half (the pool runs job 0 on this thread).
  const half = N / 2;
  const split: Record<string, number> = {};
  if (pool.size >= 2) {
    const addJobs = [0, 1].map((j) => ({
      fn: "as.add_f32",
      args: [ptrA + j * half * 4, ptrB + j * half * 4, ptrC + j * half * 4, half],
    }));
    const sumJobs = [0, 1].map((j) => ({ fn: "as.sum_f32", args: [ptrA + j * half * 4, half, slots + 8 * j] }));
    split["add c=a+b"] = gb(3 * BYTES, await medianSeconds(() => pool.run(addJobs)));
    split.sum = gb(BYTES, await medianSeconds(() => pool.run(sumJobs)));
    for (const [name, rate] of Object.entries(split)) row(name, "plait wasm (2 threads)", rate);
  }

  const checks: RatioCheck[] = [];
  for (const name of ["sum", "maxAbs", "sumSquares", "allFinite"]) {
    checks.push({ name: `${name} / memory.copy`, ratio: wasm[name] / copyRate, target: 0.85 });
  }
  checks.push({ name: "add c=a+b / memory.copy", ratio: wasm["add c=a+b"] / copyRate, target: 0.8 });
  for (const [name] of cases) checks.push({ name: `${name} / plain JS`, ratio: wasm[name] / js[name], target: 8 });
  for (const [name, rate] of Object.entries(split)) {
    checks.push({ name: `${name}: 2 threads / 1 thread`, ratio: rate / wasm[name], target: 1.6 });
  }

  for (const p of [ptrA, ptrB, ptrC, slots]) arena.free(p);
  report("reduce", rows, checks, {
    elements: N,
    bytes: "GB/s = (bytes read + bytes written) / s on 64 MiB f32 arrays: reductions 64 MiB, add 192 MiB, copy 128 MiB",
    threads: "1, and 2 for the split rows",
    variant,
  });
}
