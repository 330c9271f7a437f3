import { Bench } from "tinybench";

/** One number from a benchmark: how fast `impl` ran `case` of a suite. */
export interface Measurement {
  case: string;
  impl: string;
  value: number;
  unit: string;
}

/**
 * Median seconds per call of `fn`, measured with tinybench (warm-up included). `minTimeMs` is
 * how long to keep sampling; the median resists the noise of a shared 2-core VM.
 */
export async function medianSeconds(fn: () => unknown, minTimeMs = 400): Promise<number> {
  const bench = new Bench({ time: minTimeMs, warmupTime: 100, iterations: 5 });
  bench.add("x", fn);
  await bench.run();
  const result = bench.tasks[0].result as any;
  if (!result || result.state === "errored" || result.error) throw result?.error ?? new Error("benchmark failed");
  const median = result.latency?.p50 ?? result.p50;
  return median / 1000;
}
