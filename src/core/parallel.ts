import { runtime } from "./runtime.ts";

/** Below this many elements a memory-bound kernel runs on the calling thread alone. */
export const PARALLEL_MIN_ELEMENTS = 1 << 17;

/**
 * Splits [0, n) into one contiguous range per pool thread (each a multiple of `align`
 * elements except the last, so SIMD bodies stay aligned) and runs kernel `fn` on each with
 * `argsFor(start, count)`. Small n runs in one call on this thread.
 */
export function parallelFor(
  fn: string,
  n: number,
  argsFor: (start: number, count: number) => number[],
  { minElements = PARALLEL_MIN_ELEMENTS, align = 16 } = {},
): void {
  const { pool } = runtime();
  const parts = Math.max(1, Math.min(pool.size, Math.floor(n / minElements)));
  const step = Math.ceil(n / parts / align) * align;
  const jobs = [];
  for (let start = 0; start < n || jobs.length === 0; start += step) {
    jobs.push({ fn, args: argsFor(start, Math.min(step, n - start)) });
  }
  pool.run(jobs);
}
