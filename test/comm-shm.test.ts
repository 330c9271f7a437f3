import { afterAll, describe, expect, it } from "vitest";
import { liveWorkers, spawn } from "../src/launch/index.ts";

// The shm backend end to end: ranks are worker threads started by spawn(), running
// test/fixtures/collectives.mjs, which checks every result against test/fixtures/reference.mjs
// (exact rank-ordered f32/f64/int arithmetic with one final rounding, and a float64 reference).
// Workers load plait from dist/: `npx tsc -p tsconfig.build.json` first.

const FIXTURE = new URL("./fixtures/collectives.mjs", import.meta.url);
const DTYPES = ["f32", "f64", "f16", "bf16", "i32"] as const;
// every SIMD tail (8 halves, 4 floats, 2 doubles), sizes not divisible by 2, 3 or 4, both sides of
// the one-barrier limit (64 KiB), past the kernels' 2048-element block, and past the 1 MiB chunk
const SIZES = [0, 1, 3, 4, 5, 17, 1023, 1001, 2049, 16383, 16385, 40001];
const LARGE = 600_001;

interface Case {
  kind: string;
  dtype: string;
  op?: string;
  n: number;
  seed: number;
  root?: number;
}

function cases(worldSize: number): Case[] {
  const out: Case[] = [];
  let seed = 1;
  for (const dtype of DTYPES) {
    const ops = dtype === "i32" ? ["sum", "min", "max"] : ["sum", "avg", "min", "max"];
    for (const op of ops) for (const n of SIZES) out.push({ kind: "allReduce", dtype, op, n, seed: seed++ });
    out.push({ kind: "allReduce", dtype, op: "sum", n: LARGE, seed: seed++ });
    for (const n of [0, 1, 5, 1023, 40001]) {
      out.push({ kind: "reduceScatter", dtype, op: dtype === "i32" ? "max" : "avg", n, seed: seed++ });
      out.push({ kind: "broadcast", dtype, n, seed: seed++, root: n % worldSize });
      out.push({ kind: "allGather", dtype, n, seed: seed++ });
    }
  }
  out.push({ kind: "reduceScatter", dtype: "f32", op: "sum", n: LARGE, seed: seed++ });
  out.push({ kind: "tree", dtype: "f32", op: "sum", n: 0, seed: seed++ });
  out.push({ kind: "tree", dtype: "f32", op: "max", n: 0, seed: seed++ });
  out.push({ kind: "barrier", dtype: "f32", n: 0, seed: seed++ });
  return out;
}

interface RankResult {
  rank: number;
  threads: number;
  results: { bad: string[]; digest: string }[];
}

async function run(worldSize: number, list = cases(worldSize)): Promise<RankResult[]> {
  return spawn<RankResult>(FIXTURE, "main", { devices: worldSize, args: { cases: list }, timeoutMs: 60_000 });
}

function expectCorrectAndIdentical(ranks: RankResult[], list: Case[]): void {
  expect(ranks.map((r) => r.rank)).toEqual(ranks.map((_, i) => i));
  for (const r of ranks) {
    const bad = r.results.flatMap((res, i) =>
      res.bad.map((b) => `rank ${r.rank}, case ${JSON.stringify(list[i])}: ${b}`),
    );
    expect(bad).toEqual([]);
  }
  // every rank holds the same bits after allReduce and broadcast (not after allGather or
  // reduceScatter, whose outputs differ by design only for reduceScatter)
  list.forEach((c, i) => {
    if (c.kind === "reduceScatter" || c.kind === "barrier") return;
    const digests = new Set(ranks.map((r) => r.results[i].digest));
    expect(digests.size, `case ${JSON.stringify(c)}`).toBe(1);
  });
}

async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe("shm collectives against the references", () => {
  afterAll(() => expect(liveWorkers()).toBe(0));

  for (const worldSize of [2, 3, 4]) {
    it(`${worldSize} ranks: every dtype, op and size; all ranks get the same bits`, async () => {
      const list = cases(worldSize);
      expectCorrectAndIdentical(await run(worldSize, list), list);
    }, 180_000);
  }

  it("repeated runs, kernel pool splits, and either allreduce path give the same bits", async () => {
    const list = cases(3).filter((c) => [1001, 16383, 40001, LARGE].includes(c.n));
    const digests = (ranks: RankResult[]) => ranks.map((r) => r.results.map((x) => x.digest));
    const first = await run(3, list);
    expectCorrectAndIdentical(first, list);
    expect(digests(await run(3, list))).toEqual(digests(first));
    // each rank's large-path chunks split over two kernel threads; all sizes on the one-barrier
    // (staging) path up to 64 KiB; every size on the two-barrier slice path; no spinning, so
    // every wait sleeps
    const envs: Record<string, string>[] = [
      { PLAIT_THREADS: "2" },
      { PLAIT_SHM_SMALL_BYTES: "65536" },
      { PLAIT_SHM_SMALL_BYTES: "0" },
      { PLAIT_SHM_SPIN_MS: "0" },
    ];
    for (const env of envs) {
      const again = await withEnv(env, () => run(3, list));
      expectCorrectAndIdentical(again, list);
      expect(digests(again), JSON.stringify(env)).toEqual(digests(first));
      if (env.PLAIT_THREADS) expect(again[0].threads).toBe(2);
    }
  }, 300_000);
});
