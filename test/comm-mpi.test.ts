// The MPI backend end to end: `mpirun -np N node test/fixtures/mpi-*.mjs`, one rank per process on
// MpiComm.world(). The collectives fixture runs test/fixtures/collectives.mjs's cases (every
// result checked against test/fixtures/reference.mjs: rank-ordered arithmetic and a float64
// reference); here every rank's bits are compared with every other rank's and with ShmComm's on
// the same inputs (spawn(): worker threads). The faults fixture makes one fault per run.
// Skipped (and named by test/setup/native.ts) where mpirun or libmpi is missing, unless
// PLAIT_REQUIRE_MPI=1. Processes load plait from dist/ (test/setup/dist.ts rebuilds it).
import { spawn as spawnProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { launchedByMpi, spawn } from "../src/index.ts";
import { REQUIRE_MPI, skipMpi } from "./native.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COLLECTIVES = fileURLToPath(new URL("./fixtures/mpi-collectives.mjs", import.meta.url));
const FAULTS = fileURLToPath(new URL("./fixtures/mpi-faults.mjs", import.meta.url));
const SHM_FIXTURE = new URL("./fixtures/collectives.mjs", import.meta.url);
const MPIRUN = ["--allow-run-as-root", "--oversubscribe"];
const DTYPES = ["f32", "f64", "f16", "bf16", "i32"] as const;
// SIMD tails, the small (gather-all) path and the sliced path on both sides of 64 KiB
const SIZES = [0, 1, 5, 17, 2049, 40001];
const LARGE = 600_001;

interface Case {
  kind: string;
  dtype: string;
  op?: string;
  n: number;
  seed: number;
  root?: number;
}

interface RankResult {
  rank: number;
  worldSize: number;
  localRank: number;
  localSize: number;
  library: { vendor: string; abi: string; path: string };
  results: { bad: string[]; digest: string }[];
}

function cases(worldSize: number): Case[] {
  const out: Case[] = [];
  let seed = 1;
  for (const dtype of DTYPES) {
    const ops = dtype === "i32" ? ["sum", "min", "max"] : ["sum", "avg", "min", "max"];
    for (const op of ops) for (const n of SIZES) out.push({ kind: "allReduce", dtype, op, n, seed: seed++ });
    if (dtype === "f32" || dtype === "bf16") out.push({ kind: "allReduce", dtype, op: "sum", n: LARGE, seed: seed++ });
    for (const n of [0, 5, 1023, 40001]) {
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

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  results: any[];
}

/** Runs `launcher args… node fixture fixtureArgs…`; resolves with its output and exit code. */
function mpirun(
  np: number,
  fixture: string,
  fixtureArgs: string[],
  opts: { launcher?: string; mca?: string[]; env?: Record<string, string>; timeoutMs?: number; out?: string } = {},
): Promise<Run> {
  const launcher = opts.launcher ?? "mpirun";
  const flags = launcher === "mpirun" ? [...MPIRUN, ...(opts.mca ?? [])] : [];
  const args = [...flags, "-np", String(np), process.execPath, fixture, ...fixtureArgs];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawnProcess(launcher, args, {
      cwd: ROOT,
      env: { ...process.env, PLAIT_THREADS: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      // one line per rank, on stdout or (long ones) in files of opts.out
      const lines = opts.out
        ? readdirSync(opts.out).map((f) => readFileSync(join(opts.out!, f), "utf8"))
        : stdout.split("\n");
      const results = lines
        .filter((l) => l.startsWith("RESULT "))
        .map((l) => JSON.parse(l.slice(7)))
        .sort((a, b) => a.rank - b.rank);
      resolve({ code, stdout, stderr, ms: performance.now() - t0, results });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "plait-mpi-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the collectives fixture on `list`: the cases go in a file, each rank's results come back in one. */
function collectives(np: number, list: Case[], name: string, opts: Parameters<typeof mpirun>[3] = {}): Promise<Run> {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(list));
  const out = join(dir, name);
  mkdirSync(out);
  return mpirun(np, COLLECTIVES, [path, out], { ...opts, out });
}

function expectCorrectAndIdentical(run: Run, np: number, list: Case[]): RankResult[] {
  const ranks = run.results as RankResult[];
  expect(
    ranks.map((r) => r.rank),
    run.stderr,
  ).toEqual(Array.from({ length: np }, (_, i) => i));
  expect(run.code, run.stderr).toBe(0);
  for (const r of ranks) {
    expect(r.worldSize).toBe(np);
    const bad = r.results.flatMap((res, i) =>
      res.bad.map((b) => `rank ${r.rank}, case ${JSON.stringify(list[i])}: ${b}`),
    );
    expect(bad).toEqual([]);
  }
  list.forEach((c, i) => {
    if (c.kind === "reduceScatter" || c.kind === "barrier") return;
    const digests = new Set(ranks.map((r) => r.results[i].digest));
    expect(digests.size, `case ${JSON.stringify(c)}`).toBe(1);
  });
  return ranks;
}

/** Every rank's digest of every case equals ShmComm's for the same inputs and rank count. */
async function expectShmBits(ranks: RankResult[], np: number, list: Case[]): Promise<void> {
  const shm = await spawn<{ rank: number; results: { digest: string }[] }>(SHM_FIXTURE, "main", {
    devices: np,
    args: { cases: list },
    timeoutMs: 60_000,
  });
  for (const r of ranks) {
    const differ = list.filter((_, i) => r.results[i].digest !== shm[r.rank].results[i].digest);
    expect(differ, `rank ${r.rank}: cases whose bits differ from ShmComm's`).toEqual([]);
  }
}

describe("launchedByMpi", () => {
  it("reads the launchers' variables and nothing else", () => {
    expect(launchedByMpi({})).toBe(false);
    expect(launchedByMpi({ SLURM_PROCID: "0", WORLD_SIZE: "2" })).toBe(false);
    expect(launchedByMpi({ OMPI_COMM_WORLD_SIZE: "2" })).toBe(true);
    expect(launchedByMpi({ PMI_SIZE: "2" })).toBe(true);
    expect(launchedByMpi({ PMIX_RANK: "0" })).toBe(true);
  });
});

describe.skipIf(skipMpi())("MpiComm under mpirun", () => {
  it("2 processes: every collective and dtype is right, the same bits on every rank and as ShmComm's", async () => {
    const list = cases(2);
    const run = await collectives(2, list, "np2");
    const ranks = expectCorrectAndIdentical(run, 2, list);
    for (const r of ranks) {
      expect(r.library.abi).toBe("openmpi");
      expect(r.localSize).toBe(2);
      expect(r.localRank).toBe(r.rank);
    }
    await expectShmBits(ranks, 2, list);
  }, 120_000);

  it("3 processes (uneven shards and slices): right, identical, and ShmComm's bits", async () => {
    const list = cases(3).filter((c) => (c.kind !== "allReduce" || c.op === "sum" || c.n === 40001) && c.n !== LARGE);
    const run = await collectives(3, list, "np3");
    const ranks = expectCorrectAndIdentical(run, 3, list);
    await expectShmBits(ranks, 3, list);
  }, 120_000);

  it("over TCP (--mca btl self,tcp): the same bits as over shared memory", async () => {
    const list = cases(2).filter((c) => c.dtype === "f32" && c.n !== LARGE);
    const run = await collectives(2, list, "tcp", { mca: ["--mca", "btl", "self,tcp"] });
    const ranks = expectCorrectAndIdentical(run, 2, list);
    await expectShmBits(ranks, 2, list);
  }, 120_000);

  it("ranks that call different sizes reject on every rank, naming both calls; later calls reject too", async () => {
    const run = await mpirun(2, FAULTS, ["mismatch"]);
    expect(run.results.length, run.stderr).toBe(2);
    for (const r of run.results) {
      expect(r.first).toMatchObject({ ok: false, name: "CommError", reason: "mismatch", failedRank: 1 });
      expect(r.first.message).toContain('rank 0 allReduce(f32[4], "sum"); rank 1 allReduce(f32[5], "sum")');
      expect(r.later).toMatchObject({ ok: false, reason: "mismatch" });
      expect(r.later.message).toMatch(/^plait: barrier: the communicator is broken: allReduce: ranks called/);
    }
  }, 60_000);

  it("a rank that stalls past timeoutMs is named within the timeout, and its own late call rejects", async () => {
    const run = await mpirun(2, FAULTS, ["stall"]);
    expect(run.results.length, run.stderr).toBe(2);
    const [r0, r1] = run.results;
    expect(r0.first).toMatchObject({ ok: false, reason: "timeout", failedRank: 1 });
    expect(r0.first.message).toContain("rank 1 did not arrive in allReduce (call #1): rank 0 timed out after 500 ms");
    expect(r0.first.ms).toBeGreaterThanOrEqual(490);
    expect(r0.first.ms).toBeLessThan(1000);
    expect(r1.first).toMatchObject({ ok: false, reason: "timeout", failedRank: 1 });
    expect(r1.first.message).toContain("rank 0 reported");
  }, 60_000);

  it("an AbortSignal rejects the call on its rank and on the peers", async () => {
    const run = await mpirun(2, FAULTS, ["signal"]);
    expect(run.results.length, run.stderr).toBe(2);
    for (const r of run.results) expect(r.first).toMatchObject({ ok: false, reason: "aborted", failedRank: 0 });
    expect(run.results[0].first.ms).toBeLessThan(600);
  }, 60_000);

  it("a rank that throws and calls comm.abort(1) ends the whole job non-zero within 20 s", async () => {
    const run = await mpirun(2, FAULTS, ["abort"], { timeoutMs: 30_000 });
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBeNull(); // not killed by the test's timer
    expect(run.ms).toBeLessThan(20_000);
    expect(run.results).toEqual([]);
    expect(run.stderr).toContain("rank 1 broke in its training step");
  }, 60_000);

  it("MpiComm.world() from a worker thread throws, and the main thread's comm goes on", async () => {
    const run = await mpirun(2, FAULTS, ["worker"]);
    expect(run.results.length, run.stderr).toBe(2);
    for (const r of run.results) {
      expect(r.message).toMatch(
        /MPI was initialised by another thread of this process, and only that thread may call MPI/,
      );
      expect(r.after.ok).toBe(true);
    }
  }, 60_000);
});

const MPICH_LIB = "/usr/lib/x86_64-linux-gnu/libmpich.so.12";
const hasMpich = existsSync("/usr/bin/mpirun.mpich") && existsSync(MPICH_LIB);

// MPICH beside Open MPI (apt-get install -y mpich; mpirun stays Open MPI's): CI installs it and
// requires this suite with the others (PLAIT_REQUIRE_MPI=1); elsewhere it skips without it.
describe.skipIf(skipMpi() || (!hasMpich && !REQUIRE_MPI))("MpiComm on MPICH (mpirun.mpich, integer handles)", () => {
  it("2 processes: right, identical on both ranks, and ShmComm's bits", async () => {
    const list = cases(2).filter((c) => c.n !== LARGE);
    const run = await collectives(2, list, "mpich", {
      launcher: "mpirun.mpich",
      env: { PLAIT_MPI: MPICH_LIB },
    });
    const ranks = expectCorrectAndIdentical(run, 2, list);
    for (const r of ranks) expect(r.library).toMatchObject({ abi: "mpich", vendor: "MPICH" });
    await expectShmBits(ranks, 2, list);
  }, 120_000);
});
