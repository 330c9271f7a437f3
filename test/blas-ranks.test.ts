// Several ranks (worker threads of one process) calling the system BLAS at once: each compares
// every product with the WASM GEMM on the same operands (test/fixtures/blas-ranks.mjs), with one
// and with two BLAS threads per rank (OpenBLAS's thread count is one setting per process).
// Skipped (and named by test/setup/native.ts) where no BLAS is installed, unless PLAIT_REQUIRE_BLAS=1.
import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "../src/index.ts";
import { skipBlas } from "./native.ts";

const FIXTURE = new URL("./fixtures/blas-ranks.mjs", import.meta.url);
const saved = { PLAIT_THREADS: process.env.PLAIT_THREADS, PLAIT_BLAS: process.env.PLAIT_BLAS };

afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe.skipIf(skipBlas())("BLAS from two ranks at once", () => {
  for (const threads of [1, 2]) {
    it(`${threads} thread(s) per rank: every product matches the WASM GEMM on both ranks`, async () => {
      process.env.PLAIT_THREADS = String(threads); // read by spawn: kernel threads per rank
      process.env.PLAIT_BLAS = "auto"; // the ranks read it: the BLAS, whatever the shell says
      const results = await spawn<{
        rank: number;
        worst: number;
        products: number;
        threads: number;
        blasThreads: number;
        inUse: boolean;
      }>(FIXTURE, "main", { devices: 2, args: { iters: 150 } });
      expect(results.map((r) => r.rank)).toEqual([0, 1]);
      for (const r of results) {
        expect(r.inUse).toBe(true);
        expect(r.products).toBe(150);
        expect(r.threads).toBe(threads);
        expect(r.blasThreads).toBe(threads);
        expect(r.worst, `rank ${r.rank}: worst |BLAS − WASM| / bound`).toBeLessThanOrEqual(1);
      }
    }, 120_000);
  }
});
