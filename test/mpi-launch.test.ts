import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { skipMpi } from "./native.ts";
import { identical, maxDiff, type RankResult, runRanks } from "./strategy-run.ts";

// launch(), spawn() and `plait demo` joining a real `mpirun` (OpenMPI from apt): each process is a
// rank, or DEVICES ranks as threads (a HierComm: shm inside the process, MPI across). The built
// dist/ is what runs (the global setup rebuilds it when stale).

const CLI = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const out = mkdtempSync(join(tmpdir(), "plait-mpi-demo-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Runs `mpirun -np <np> node <args>`, with extra environment variables. */
function mpirun(np: number, args: string[], env: Record<string, string> = {}, timeout = 120_000) {
  const started = Date.now();
  const r = spawnSync(
    "mpirun",
    ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", String(np), process.execPath, ...args],
    { encoding: "utf8", timeout, env: { ...process.env, PLAIT_THREADS: "1", ...env } },
  );
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", seconds: (Date.now() - started) / 1000 };
}

/** Every rank's result of test/fixtures/strategy-train.mjs under mpirun, in rank order. */
function ranksOverMpi(np: number, devices: number, args: Record<string, unknown>): RankResult[] {
  const dir = mkdtempSync(join(tmpdir(), "plait-mpi-ranks-"));
  try {
    const env = { DEVICES: String(devices), ARGS: JSON.stringify(args), RESULTS: dir };
    const r = mpirun(np, [fixture("mpi-strategy.mjs")], env);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([...Array(np * devices).keys()].map((k) => `rank-${k}.json`).sort());
    return [...Array(np * devices).keys()].map((k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), "utf8")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ARGS = { steps: 3, globalBatch: 16, hidden: 16 };

describe.skipIf(skipMpi())("strategies over MPI processes (mpirun -np 2)", () => {
  it("DDP over 2 MPI processes trains to DDP over 2 threads' very bits", async () => {
    const args = { ...ARGS, transforms: [["ddp", {}]] };
    const mpi = ranksOverMpi(2, 1, args);
    const shm = await runRanks(2, args);
    for (const r of mpi) expect(identical(r.params, shm[0].params)).toBe(true);
    expect(mpi.map((r) => r.outs.map((o) => o.loss))).toEqual(shm.map((r) => r.outs.map((o) => o.loss)));
  }, 240_000);

  it("withHorovod over MPI equals DDP (fusion changes no element's sum)", async () => {
    const mpi = ranksOverMpi(2, 1, { ...ARGS, transforms: [["horovod", {}]] });
    const ddp = await runRanks(2, { ...ARGS, transforms: [["ddp", {}]] });
    for (const r of mpi) expect(maxDiff(r.params, ddp[0].params)).toBeLessThan(1e-6);
    expect(identical(mpi[0].params, mpi[1].params)).toBe(true);
  }, 240_000);

  it("2 processes × 2 threads: withDDP2 and withDDP equal DDP over 4 threads up to the order of the sums", async () => {
    const ref = await runRanks(4, { ...ARGS, transforms: [["ddp", {}]] });
    for (const name of ["ddp2", "ddp"]) {
      const hier = ranksOverMpi(2, 2, { ...ARGS, transforms: [[name, {}]] });
      for (const r of hier) {
        expect(identical(r.params, hier[0].params)).toBe(true); // every rank the same bits
        expect(maxDiff(r.params, ref[0].params)).toBeLessThan(1e-5);
      }
    }
  }, 240_000);

  it("ZeRO-3 and FSDP over MPI (allGather, reduceScatter) equal DDP's params", async () => {
    const ddp = await runRanks(2, { ...ARGS, transforms: [["ddp", {}]] });
    for (const transforms of [[["zero", 3]], [["fsdp", {}]]]) {
      const mpi = ranksOverMpi(2, 1, { ...ARGS, transforms });
      for (const r of mpi) expect(maxDiff(r.params, ddp[0].params)).toBeLessThan(1e-6);
    }
  }, 240_000);
});

describe.skipIf(skipMpi())("plait demo under mpirun", () => {
  const demo = (np: number, ...flags: string[]) =>
    mpirun(np, [CLI, "demo", "--out", out, "--epochs", "1", "--json", ...flags], {}, 240_000);

  it("2 processes train as 2 threads do, rank 0 alone reports, with the environment and backend", () => {
    // default kernel threads on both sides (each rank's share of the cores), as a user runs it
    const flags = [CLI, "demo", "--out", out, "--epochs", "1", "--json", "--strategy", "ddp"];
    const mpi = mpirun(2, flags, { PLAIT_THREADS: "" }, 240_000);
    expect(mpi.stderr).toBe("");
    expect(mpi.status).toBe(0);
    const lines = mpi.stdout.trim().split("\n");
    expect(lines).toHaveLength(1); // rank 0 alone prints
    const got = JSON.parse(lines[0]);
    expect(got).toMatchObject({ environment: "mpi", backend: "mpi", worldSize: 2, devices: 1, strategy: "ddp" });
    const threads = spawnSync(
      process.execPath,
      [CLI, "demo", "--out", out, "--epochs", "1", "--json", "--devices", "2"],
      {
        encoding: "utf8",
        env: { ...process.env, PLAIT_THREADS: "" },
      },
    );
    const ref = JSON.parse(threads.stdout);
    expect(ref).toMatchObject({ environment: "lightning", backend: "shm", worldSize: 2 });
    expect(got.finalLoss).toBe(ref.finalLoss);
    expect(got.testAccuracy).toBe(ref.testAccuracy);
  }, 240_000);

  it("horovod and ddp2 --devices 2 train (loss falls, accuracy well above chance)", () => {
    for (const flags of [
      ["--strategy", "horovod"],
      ["--strategy", "ddp2", "--devices", "2", "--batch-size", "64"],
    ]) {
      const r = demo(2, ...flags);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const got = JSON.parse(r.stdout);
      expect(got.strategy).toBe(flags[1]);
      expect(got.worldSize).toBe(flags.includes("--devices") ? 4 : 2);
      expect(got.backend).toBe(flags.includes("--devices") ? "shm+mpi" : "mpi");
      expect(got.testAccuracy).toBeGreaterThan(0.8);
    }
  }, 240_000);

  it("with no flags, the demo still runs as ranks of the job (never one process training alone per rank)", () => {
    const r = demo(2);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ strategy: "ddp", worldSize: 2, environment: "mpi" });
  }, 240_000);
});

describe.skipIf(skipMpi())("faults and bad input under mpirun", () => {
  const script = fixture("launch-script.mjs");

  it("launch(): each process a rank (DEVICES 1) or 2 threads each (a world of 4)", () => {
    for (const devices of [1, 2]) {
      const r = mpirun(2, [script], { DEVICES: String(devices) });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const n = 2 * devices;
      const sum = (n * (n + 1)) / 2;
      for (let rank = 0; rank < n; rank++)
        expect(r.stdout).toContain(`rank ${rank}/${n} main=${rank === 0} sum=${sum},${n}`);
      expect(r.stdout).toContain("all ranks done");
    }
  }, 240_000);

  it("a rank that throws ends the whole job non-zero within 20 s, naming the rank", () => {
    const r = mpirun(2, [script], { DEVICES: "1", SCENARIO: "throw" }, 60_000);
    expect(r.status).not.toBe(0);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain("plait: rank 1 of 2 processes failed: Error: boom on rank 1");
  }, 240_000);

  it("a worker thread that throws in a process of 2 threads ends the job, naming its global rank", () => {
    const r = mpirun(2, [script], { DEVICES: "2", SCENARIO: "throw" }, 60_000);
    expect(r.status).not.toBe(0);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toMatch(/rank 1 failed: Error: boom on rank 1/);
  }, 240_000);

  it("a stalled rank: the others time out naming it, and the job ends", () => {
    const r = mpirun(2, [script], { DEVICES: "1", SCENARIO: "stall", TIMEOUT_MS: "2000" }, 60_000);
    expect(r.status).not.toBe(0);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toMatch(/rank 1/);
    expect(r.stderr).toMatch(/timeout|did not/i);
  }, 240_000);

  it("a stalled thread of another process (global rank 3 of 2 × 2) is named by its global rank", () => {
    const r = mpirun(2, [script], { DEVICES: "2", SCENARIO: "stall", STALL_RANK: "3", TIMEOUT_MS: "2000" }, 60_000);
    expect(r.status).not.toBe(0);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toMatch(/rank 3 \(process 1, thread 1\)|rank 3 did not/);
  }, 240_000);

  it("processes that disagree on devices, and a WORLD_SIZE that is not processes × devices, are refused", () => {
    const r = mpirun(2, [fixture("mpi-devices.mjs")], {}, 60_000);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("every process must ask for the same devices; per process rank: 0: 1, 1: 2");
    const w = mpirun(2, [script], { DEVICES: "2", WORLD_SIZE: "2" }, 60_000);
    expect(w.status).not.toBe(0);
    expect(w.stderr).toContain('WORLD_SIZE is "2", but the world is 2 processes × 2 devices = 4 ranks');
  }, 240_000);
});

describe("processes started without MPI", () => {
  // No mpirun here: the variables a launcher sets, on a plain process, which must refuse to train alone.
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [fixture("launch-script.mjs")], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, DEVICES: "1", ...env },
    });

  it("TorchElastic, Kubeflow-style and Lightning LOCAL_RANK launches say to use MPI instead", () => {
    const cases: Record<string, string>[] = [
      { TORCHELASTIC_RUN_ID: "x", RANK: "0", WORLD_SIZE: "2", LOCAL_RANK: "0", GROUP_RANK: "0" },
      { LOCAL_RANK: "0", WORLD_SIZE: "2", NODE_RANK: "0" },
    ];
    for (const env of cases) {
      const r = run(env);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("not by an MPI launcher; across processes plait's CPU collectives run on MPI");
      expect(r.stderr).toContain("mpirun -np N");
    }
  }, 240_000);

  it("srun without --mpi names the flag to add", () => {
    const r = run({
      SLURM_NTASKS: "2",
      SLURM_NTASKS_PER_NODE: "2",
      SLURM_PROCID: "0",
      SLURM_LOCALID: "0",
      SLURM_NODEID: "0",
      SLURM_NODELIST: "node1",
      SLURM_JOB_NAME: "train",
      SLURM_JOB_ID: "1234",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("srun started them without an MPI plugin: add --mpi=pmix");
  }, 240_000);

  it("an MPI launcher's variables with no usable MPI: the error names what was tried and how to install it", () => {
    const ompi = { OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_LOCAL_RANK: "0" };
    const missing = run({ ...ompi, PLAIT_MPI: "/nonexistent/libmpi.so" });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("plait: MPI: /nonexistent/libmpi.so (from PLAIT_MPI) cannot be used");
    expect(missing.stderr).toContain("apt-get install -y openmpi-bin");
    const notMpi = run({ ...ompi, PLAIT_MPI: "libc.so.6" });
    expect(notMpi.status).not.toBe(0);
    expect(notMpi.stderr).toMatch(/libc\.so\.6 \(PLAIT_MPI\): loads, but lacks symbols MPI_Init_thread/);
  }, 240_000);
});
