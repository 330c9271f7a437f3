// detectEnvironment under a real SLURM (scripts/slurm-up.sh: one node, Debian's slurm-wlm): every
// task of `srun --mpi=pmix -N 1 --ntasks-per-node=2` runs test/fixtures/slurm-env.mjs, and what it
// detected is checked against the variables srun set and `scontrol show hostnames`; `srun -n 2`
// (no SLURM_NTASKS_PER_NODE) gives the error that names --ntasks-per-node; a job named `bash` is
// not taken for a SLURM job. Skipped (and named by test/setup/native.ts) where no SLURM is up,
// unless PLAIT_REQUIRE_SLURM=1. Every srun is bounded: a broken SLURM fails in seconds.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SLURM_INSTALL, skipSlurm, slurmCommand, slurmMissing } from "./setup/slurm.ts";
import { identical, type RankResult, runRanks } from "./strategy-run.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/slurm-env.mjs", import.meta.url));

interface TaskLine {
  detected: {
    name: string;
    worldSize: number;
    globalRank: number;
    localRank: number;
    nodeRank: number;
    mainAddress: string;
    mainPort: number;
  } | null;
  error: { name: string; variable: string | null; message: string } | null;
  slurm: Record<string, string>;
}

/** `srun <args> <command>` as a job of its own (bounded: a broken SLURM fails in seconds). */
function srunRaw(args: string[], command: string[], extraEnv: Record<string, string> = {}, timeout = 30_000) {
  const missing = slurmMissing(); // required but not up: fail now, not after srun's retries
  if (missing !== undefined) throw new Error(`no SLURM up: ${missing}\nbring one up with: ${SLURM_INSTALL}`);
  // not a step of whatever allocation vitest may itself run in: a new job, whatever the shell set
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLURM_|SBATCH_|SALLOC_)/.test(k)));
  // --oversubscribe: other suites' jobs (MPI) may hold the cores at the same time
  const all = ["--immediate=10", "--time=2", "--oversubscribe", "--kill-on-bad-exit=1", ...args, ...command];
  const r = spawnSync("srun", all, { encoding: "utf8", env: { ...env, ...extraEnv }, timeout });
  const what = `srun ${all.join(" ")}`;
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status} (${r.signal ?? "no signal"}):\n${r.stderr}`);
  return r;
}

/** `srun <args> node slurm-env.mjs`: the tasks' lines, rank order. */
function srun(args: string[]): TaskLine[] {
  const r = srunRaw(args, [process.execPath, FIXTURE]);
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  const tasks = lines.map((l) => JSON.parse(l) as TaskLine);
  return tasks.sort((a, b) => Number(a.slurm.SLURM_PROCID) - Number(b.slurm.SLURM_PROCID));
}

describe.skipIf(skipSlurm())("detectEnvironment under a real SLURM", () => {
  it("SLURM is up (sinfo shows a node that takes jobs, srun has pmix)", () => {
    const missing = slurmMissing();
    if (missing !== undefined) throw new Error(`no SLURM up: ${missing}\nbring one up with: ${SLURM_INSTALL}`);
  }, 240_000);

  it("srun --mpi=pmix -N 1 --ntasks-per-node=2: each task detects slurm with its own ranks", () => {
    const tasks = srun(["--mpi=pmix", "--job-name=plait-slurm-test", "-N", "1", "--ntasks-per-node=2"]);
    expect(tasks.length).toBe(2);
    const first = tasks[0].slurm;
    const hosts = slurmCommand("scontrol", ["show", "hostnames", first.SLURM_NODELIST]);
    expect(hosts.error).toBeUndefined();
    const nodes = hosts.out.trim().split("\n");
    expect(nodes.length).toBe(1);
    for (const [i, { detected, error, slurm }] of tasks.entries()) {
      expect(error, `task ${i}`).toBeNull();
      // what srun set: 2 tasks on 1 node, this task's ranks, all of one job
      expect(slurm.SLURM_NTASKS).toBe("2");
      expect(slurm.SLURM_NTASKS_PER_NODE).toBe("2");
      expect(slurm.SLURM_PROCID).toBe(String(i));
      expect(slurm.SLURM_JOB_ID).toBe(first.SLURM_JOB_ID);
      expect(slurm.SLURM_NODELIST).toBe(first.SLURM_NODELIST);
      // and what detectEnvironment made of it
      expect(detected).toEqual({
        name: "slurm",
        worldSize: Number(slurm.SLURM_NTASKS),
        globalRank: Number(slurm.SLURM_PROCID),
        localRank: Number(slurm.SLURM_LOCALID),
        nodeRank: Number(slurm.SLURM_NODEID),
        mainAddress: nodes[0],
        mainPort: Number(slurm.SLURM_JOB_ID.slice(-4)) + 15000, // Lightning's rule, no MASTER_PORT set
      });
    }
    expect(tasks.map((t) => t.detected?.localRank).sort()).toEqual([0, 1]);
    expect(tasks.map((t) => t.detected?.nodeRank)).toEqual([0, 0]);
  }, 240_000);

  it("srun -n 2 (no --ntasks-per-node): each task gets the error that names --ntasks-per-node", () => {
    const tasks = srun(["--job-name=plait-slurm-test", "-N", "1", "-n", "2"]);
    expect(tasks.length).toBe(2);
    for (const { detected, error, slurm } of tasks) {
      expect(slurm.SLURM_NTASKS).toBe("2");
      expect(slurm.SLURM_NTASKS_PER_NODE).toBeUndefined(); // what srun -n leaves out
      expect(detected).toBeNull();
      expect(error?.name).toBe("ClusterEnvironmentError");
      expect(error?.variable).toBe("SLURM_NTASKS_PER_NODE");
      expect(error?.message).toMatch(/SLURM_NTASKS is 2 but SLURM_NTASKS_PER_NODE is not set/);
      expect(error?.message).toMatch(/--ntasks-per-node=2/);
    }
  }, 240_000);

  it("a job named bash is an interactive session, not a SLURM job to take ranks from", () => {
    const tasks = srun(["--job-name=bash", "-N", "1", "--ntasks-per-node=2"]);
    expect(tasks.length).toBe(2);
    for (const { detected, slurm } of tasks) {
      expect(slurm.SLURM_JOB_NAME).toBe("bash");
      expect(detected?.name).toBe("lightning");
    }
  }, 240_000);
});

describe.skipIf(skipSlurm())("training under a real srun (--mpi=pmix: each task an MPI rank)", () => {
  const TASKS = ["--mpi=pmix", "--job-name=plait-slurm-train", "-N", "1", "--ntasks-per-node=2"];
  const CLI = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

  it("both tasks train to identical params, DDP over 2 threads' very bits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plait-slurm-ranks-"));
    try {
      const args = { steps: 3, globalBatch: 16, hidden: 16, transforms: [["ddp", {}]] };
      const fixture = fileURLToPath(new URL("./fixtures/mpi-strategy.mjs", import.meta.url));
      const env = { PLAIT_THREADS: "1", DEVICES: "1", ARGS: JSON.stringify(args), RESULTS: dir };
      srunRaw(TASKS, [process.execPath, fixture], env, 120_000);
      const ranks = [0, 1].map((k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), "utf8")) as RankResult);
      const shm = await runRanks(2, args);
      for (const r of ranks) expect(identical(r.params, shm[0].params)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it("plait demo: rank 0 alone reports, with environment slurm, as 2 threads train", () => {
    const out = mkdtempSync(join(tmpdir(), "plait-slurm-demo-"));
    try {
      const flags = ["demo", "--out", out, "--epochs", "1", "--json", "--strategy", "ddp"];
      const r = srunRaw(TASKS, [process.execPath, CLI, ...flags], { PLAIT_THREADS: "1" }, 240_000);
      const lines = r.stdout.trim().split("\n");
      expect(lines).toHaveLength(1);
      const got = JSON.parse(lines[0]);
      expect(got).toMatchObject({ environment: "slurm", backend: "mpi", worldSize: 2, strategy: "ddp" });
      const threads = spawnSync(process.execPath, [CLI, ...flags, "--devices", "2"], {
        encoding: "utf8",
        env: { ...process.env, PLAIT_THREADS: "1" },
      });
      const ref = JSON.parse(threads.stdout);
      expect(got.finalLoss).toBe(ref.finalLoss);
      expect(got.testAccuracy).toBe(ref.testAccuracy);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 240_000);
});
