// Whole-tensor reductions returning JS numbers. Large inputs split across the pool: each thread
// reduces one contiguous range into its own f64 slot, and the slots are combined here in
// thread order, so the result is deterministic for a given thread count. In deterministic mode
// the ranges are fixed chunks of PARALLEL_MIN_ELEMENTS whatever the thread count (run a pool's
// worth at a time), so the sums are the same bits on 1 thread or 16.
// Error bounds and NaN behaviour: kernels/as/reduce.ts.
import { checkArg } from "./elementwise.ts";
import { PARALLEL_MIN_ELEMENTS, parallelFor } from "./parallel.ts";
import { type Runtime, runtime } from "./runtime.ts";
import type { Tensor } from "./tensor.ts";

const slots = new WeakMap<Runtime, Float64Array>();

/** One f64 per pool thread for the partial results, allocated once per runtime. */
function partialSlots(rt: Runtime): Float64Array {
  let view = slots.get(rt);
  if (!view) {
    view = new Float64Array(rt.memory.buffer, rt.arena.alloc(8 * rt.pool.size), rt.pool.size);
    slots.set(rt, view);
  }
  return view;
}

/** Runs reduction kernel `fn` over x; returns the per-thread partials, in order. */
function partials(fn: string, x: Tensor): Float64Array {
  const rt = runtime();
  const view = partialSlots(rt);
  const base = view.byteOffset;
  const ptr = x.ptr;
  const bytes = x.dtype === "f64" ? 8 : 4;
  if (rt.deterministic) return chunkPartials(rt, fn, ptr, bytes, x.size, view);
  let jobs = 0;
  parallelFor(fn, x.size, (start, count) => [ptr + start * bytes, count, base + 8 * jobs++]);
  return view.subarray(0, jobs);
}

/** Partials over fixed chunks of PARALLEL_MIN_ELEMENTS (independent of the pool size), in order. */
function chunkPartials(rt: Runtime, fn: string, ptr: number, bytes: number, n: number, view: Float64Array) {
  const chunks = Math.max(1, Math.ceil(n / PARALLEL_MIN_ELEMENTS));
  const out = new Float64Array(chunks);
  for (let first = 0; first < chunks; first += rt.pool.size) {
    const jobs = [];
    for (let c = first; c < Math.min(chunks, first + rt.pool.size); c++) {
      const start = c * PARALLEL_MIN_ELEMENTS;
      const args = [ptr + start * bytes, Math.min(PARALLEL_MIN_ELEMENTS, n - start), view.byteOffset + 8 * (c - first)];
      jobs.push({ fn, args });
    }
    rt.pool.run(jobs);
    out.set(view.subarray(0, jobs.length), first);
  }
  return out;
}

/** Σ of partials with Neumaier's compensation; an inf or NaN total is returned as it is. */
function compensatedSum(parts: Float64Array): number {
  let total = 0;
  let comp = 0;
  for (const p of parts) {
    const t = total + p;
    comp += Math.abs(total) >= Math.abs(p) ? total - t + p : p - t + total;
    total = t;
  }
  return Number.isFinite(total) ? total + comp : total;
}

/** Σ x over all elements (f32 or f64); 0 for an empty tensor. */
export function sum(x: Tensor): number {
  const t = checkArg("sum", "x", x, ["f32", "f64"]);
  return compensatedSum(partials(`as.sum_${t.dtype}`, t));
}

/** Σ x / n (f32 or f64); NaN for an empty tensor. */
export function mean(x: Tensor): number {
  const t = checkArg("mean", "x", x, ["f32", "f64"]);
  return compensatedSum(partials(`as.sum_${t.dtype}`, t)) / t.size;
}

/** Σ x² (f32 or f64), e.g. for an L2 norm: Math.sqrt(sumSquares(g)). */
export function sumSquares(x: Tensor): number {
  const t = checkArg("sumSquares", "x", x, ["f32", "f64"]);
  return compensatedSum(partials(`as.sum_squares_${t.dtype}`, t));
}

/** Largest element (f32); NaN if any element is NaN. Throws on an empty tensor. */
export function max(x: Tensor): number {
  const t = checkArg("max", "x", x, ["f32"]);
  if (t.size === 0) throw new RangeError(`plait: max: argument x is empty (shape [${t.shape.join(", ")}])`);
  return Math.max(...partials("as.max_f32", t));
}

/** Largest |x| (f32); NaN if any element is NaN; 0 for an empty tensor. */
export function maxAbs(x: Tensor): number {
  const t = checkArg("maxAbs", "x", x, ["f32"]);
  return Math.max(0, ...partials("as.max_abs_f32", t));
}

/** Whether every element is finite (no NaN, no ±inf); true for an empty tensor. */
export function allFinite(x: Tensor): boolean {
  const t = checkArg("allFinite", "x", x, ["f32"]);
  return partials("as.all_finite_f32", t).every((p) => p === 1);
}
