// A child of bench/gemm.ts, runnable by Node, Deno and Bun alike (plain JS, plait by package
// name): plait's f32 matmul on one thread in a fresh process. Reads PLAIT_BENCH_GEMM, JSON
// { shapes: [[m, n, k, transA, transB], ...], first: N (0 for none), rounds, minMs }, and
// prints one JSON line: the runtime and kernel build, the GEMM kernel choice, GFLOP/s per shape
// (the fastest call over `rounds` runs of at least minMs each, as the parent times its peers),
// and for first > 0 the first N³ product of the process (kernel selection included) against
// the fastest later one.
import { core, runtime, tensor } from "plait";

/** @type {any} */
const g = globalThis;
/** @param {string} name */
const env = (name) => (g.Deno ? g.Deno.env.get(name) : g.process?.env?.[name]);
const spec = JSON.parse(env("PLAIT_BENCH_GEMM") ?? "{}");
const runtimeName = g.Deno ? "deno" : g.Bun ? "bun" : "node";

let seed = 1;
/** Deterministic values in [-0.5, 0.5). @param {number} len */
function random(len) {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out[i] = seed / 2 ** 32 - 0.5;
  }
  return out;
}

/** @param {number} m @param {number} n @param {number} k @param {boolean} transA @param {boolean} transB */
function operands(m, n, k, transA, transB) {
  const a = tensor(random(m * k), transA ? [k, m] : [m, k]);
  const b = tensor(random(k * n), transB ? [n, k] : [k, n]);
  const out = tensor(new Float32Array(m * n), [m, n]);
  return { a, b, call: () => core.matmul(a, b, { transA, transB, out, threads: 1 }) };
}

/**
 * The fastest single call of fn over `rounds` runs of at least `minMs` each.
 * @param {() => unknown} fn @param {number} rounds @param {number} minMs
 */
function fastestMs(fn, rounds, minMs) {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    do {
      const t0 = performance.now();
      fn();
      best = Math.min(best, performance.now() - t0);
    } while (performance.now() - start < minMs);
  }
  return best;
}

/** @type {Record<string, unknown>} */
const result = { runtime: runtimeName, variant: runtime().variant };
if (spec.first > 0) {
  const N = spec.first;
  const { call } = operands(N, N, N, false, false);
  const t0 = performance.now();
  call();
  const firstMs = performance.now() - t0;
  result.firstCall = { n: N, firstMs, steadyMs: fastestMs(call, 1, 300) };
}
result.rates = (spec.shapes ?? []).map(
  (/** @type {[number, number, number, boolean, boolean]} */ [m, n, k, transA, transB]) => {
    const { call } = operands(m, n, k, transA, transB);
    return (2 * m * n * k) / (fastestMs(call, spec.rounds ?? 3, spec.minMs ?? 400) * 1e6);
  },
);
result.kernel = core.gemmKernel();
console.log(JSON.stringify(result));
if (g.process?.exit) g.process.exit(0);
