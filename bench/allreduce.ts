// Suite "allreduce": the shm backend's f32 sum allreduce at 2 ranks (worker threads on one shared
// memory), against OpenMPI's MPI_Allreduce on 2 processes (bench/mpi/allreduce.c, built with
// mpicc into a temp dir) and a single-core memory.copy, all measured in this run; and plait's
// MpiComm on 2 processes (bench/mpi/allreduce-plait.mjs, from 1 MiB up) against the same OpenMPI.
// nccl-tests definitions: algbw = bytes / time, busbw = algbw · 2(n−1)/n; a call's time is the
// slowest rank's (each sample's loop time is max-reduced over ranks), the median of 7 samples.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { type RankContext, runtime, spawn, Tensor, tensor, zeros } from "plait";
import type { Measurement } from "./lib/measure.ts";
import { medianSeconds } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const RANKS = 2;
const SIZES = [4, 16, 64, 256, 1024, 4096, 16384, 65536].map((k) => k * 1024);
const SAMPLES = 7;
/** Bytes each timed loop moves per rank: sets its call count (3 to 20,000 calls). */
const SHM_BUDGET = 1 << 30;
const MPI_BUDGET = 1 << 28; // OpenMPI needs ~0.25 s per 64 MiB call here

const label = (bytes: number) => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`);
const busFactor = (2 * (RANKS - 1)) / RANKS;
const callsFor = (bytes: number, budget: number) => Math.min(20_000, Math.max(3, Math.floor(budget / bytes)));

interface RankTimes {
  seconds: number[];
  wrong: number;
}

/** Runs on every rank (spawned): median seconds per allreduce for each size, the slowest rank's. */
export async function rankMain({ comm, rank, worldSize }: RankContext, sizes: number[]): Promise<RankTimes> {
  const seconds: number[] = [];
  let wrong = 0;
  const times = zeros([SAMPLES], { dtype: "f64" });
  for (const bytes of sizes) {
    const n = bytes / 4;
    const x = zeros([n]);
    x.data().fill(rank + 1);
    await comm.allReduce(x, "sum"); // checked once: every element is 1 + 2 + … + worldSize
    const want = (worldSize * (worldSize + 1)) / 2;
    for (const v of x.data()) wrong += v !== want ? 1 : 0;
    x.data().fill(0);
    const calls = callsFor(bytes, SHM_BUDGET);
    for (let i = 0; i < Math.min(calls, 100); i++) await comm.allReduce(x, "sum");
    const t = times.data();
    for (let s = 0; s < SAMPLES; s++) {
      await comm.barrier();
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await comm.allReduce(x, "sum");
      t[s] = (performance.now() - t0) / 1000 / calls;
    }
    await comm.allReduce(times, "max");
    seconds.push(Float64Array.from(times.data()).sort()[SAMPLES >> 1]);
    x.dispose();
  }
  return { seconds, wrong };
}

/** OpenMPI's median seconds per call for each size, or why it could not run. */
function openMPI(sizes: number[]): { seconds: number[]; wrong: number } | string {
  const dir = mkdtempSync(`${tmpdir()}/plait-mpi-`);
  try {
    const exe = `${dir}/allreduce`;
    // compiled into build/bench/: the C source stays in bench/mpi/
    const src = fileURLToPath(new URL("../../bench/mpi/allreduce.c", import.meta.url));
    try {
      execFileSync("mpicc", ["-O2", "-o", exe, src], { stdio: "pipe" });
    } catch (e) {
      return `mpicc failed or is missing (${(e as Error).message.split("\n")[0]})`;
    }
    const args = ["--allow-run-as-root", "--oversubscribe", "-np", String(RANKS), exe, String(SAMPLES)];
    const out = execFileSync("mpirun", [...args, String(MPI_BUDGET), ...sizes.map(String)], { encoding: "utf8" });
    const json = JSON.parse(out.trim().split("\n").at(-1)!);
    return { seconds: json.seconds, wrong: json.wrong };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MPI_SIZES: the sizes plait's MpiComm is measured at (≥ 1 MiB), under the same mpirun. */
const MPI_SIZES = SIZES.filter((b) => b >= 1 << 20);

/** plait's MpiComm median seconds per call for each of MPI_SIZES, or why it could not run. */
function plaitMPI(): { seconds: number[]; wrong: number } | string {
  const script = fileURLToPath(new URL("../../bench/mpi/allreduce-plait.mjs", import.meta.url));
  const args = ["--allow-run-as-root", "--oversubscribe", "-np", String(RANKS), process.execPath, script];
  try {
    const out = execFileSync("mpirun", [...args, String(SAMPLES), String(MPI_BUDGET), ...MPI_SIZES.map(String)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const json = JSON.parse(out.trim().split("\n").at(-1)!);
    return { seconds: json.seconds, wrong: json.wrong };
  } catch (e) {
    return `mpirun of ${script} failed (${(e as Error).message.split("\n")[0]})`;
  }
}

/** Single-core memory.copy of `bytes`, in r+w bytes per second (the DRAM yardstick). */
async function memoryCopy(bytes: number): Promise<number> {
  const src = tensor(new Float32Array(bytes / 4).fill(1));
  const dst = new Tensor([bytes / 4], "f32");
  const { k } = runtime();
  const seconds = await medianSeconds(() => k.as.copy_bytes(dst.ptr, src.ptr, bytes), 1000);
  src.dispose();
  dst.dispose();
  return (2 * bytes) / seconds;
}

export async function run(): Promise<void> {
  const loadBefore = loadavg()[0];
  const shm = await spawn<RankTimes>(new URL(import.meta.url), "rankMain", { devices: RANKS, args: SIZES });
  const mpi = openMPI(SIZES);
  const plaitMpi = plaitMPI();
  const copy = await memoryCopy(SIZES.at(-1)!);
  const loadAfter = loadavg()[0];

  const rows: Measurement[] = [];
  const busbw = (bytes: number, s: number) => ((bytes / s) * busFactor) / 1e9;
  console.log(
    `\nallreduce, f32 sum, ${RANKS} ranks, in place; load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`,
  );
  console.log("size       count      impl       time(us)  algbw(GB/s)  busbw(GB/s)");
  const line = (bytes: number, impl: string, s: number) =>
    console.log(
      `${label(bytes).padEnd(10)} ${String(bytes / 4).padEnd(10)} ${impl.padEnd(10)} ${(s * 1e6).toFixed(2).padStart(8)}  ${(bytes / s / 1e9).toFixed(2).padStart(11)}  ${busbw(bytes, s).toFixed(2).padStart(11)}`,
    );
  SIZES.forEach((bytes, i) => {
    const s = shm[0].seconds[i];
    line(bytes, "plait shm", s);
    rows.push({ case: label(bytes), impl: "plait shm, 2 threads", value: busbw(bytes, s), unit: "GB/s busbw" });
    if (typeof mpi !== "string") {
      line(bytes, "OpenMPI", mpi.seconds[i]);
      rows.push({
        case: label(bytes),
        impl: "OpenMPI, 2 processes",
        value: busbw(bytes, mpi.seconds[i]),
        unit: "GB/s busbw",
      });
    }
  });
  if (typeof plaitMpi !== "string") {
    MPI_SIZES.forEach((bytes, j) => {
      line(bytes, "plait MPI", plaitMpi.seconds[j]);
      rows.push({
        case: label(bytes),
        impl: "plait MpiComm, 2 processes",
        value: busbw(bytes, plaitMpi.seconds[j]),
        unit: "GB/s busbw",
      });
    });
  }
  const big = SIZES.at(-1)!;
  rows.push({ case: label(big), impl: "memory.copy, 1 core", value: copy / 1e9, unit: "GB/s r+w" });
  const latency = shm[0].seconds[0] * 1e6;
  rows.push({ case: "4 KiB latency", impl: "plait shm, 2 threads", value: latency, unit: "µs" });

  const checks: RatioCheck[] = [];
  const at = (bytes: number) => SIZES.indexOf(bytes);
  if (typeof mpi === "string") console.log(`OpenMPI peer skipped: ${mpi}`);
  else {
    rows.push({ case: "4 KiB latency", impl: "OpenMPI, 2 processes", value: mpi.seconds[0] * 1e6, unit: "µs" });
    for (const mib of [1, 4, 16]) {
      const i = at(mib << 20);
      checks.push({ name: `busbw vs OpenMPI at ${mib} MiB`, ratio: mpi.seconds[i] / shm[0].seconds[i], target: 5 });
    }
    checks.push({
      name: "4 KiB latency vs OpenMPI",
      ratio: latency / (mpi.seconds[0] * 1e6),
      target: 1 / 3,
      better: "lower",
    });
  }
  if (typeof plaitMpi === "string") console.log(`plait MpiComm skipped: ${plaitMpi}`);
  else if (typeof mpi !== "string") {
    MPI_SIZES.forEach((bytes, j) => {
      const ratio = mpi.seconds[at(bytes)] / plaitMpi.seconds[j];
      checks.push({ name: `MpiComm busbw vs OpenMPI at ${label(bytes)}`, ratio, target: 0.9 });
    });
  }
  checks.push({
    name: `busbw vs memory.copy (r+w) at ${label(big)}`,
    ratio: (busbw(big, shm[0].seconds[at(big)]) * 1e9) / copy,
    target: 0.65,
  });
  checks.push({ name: "4 KiB latency in µs (absolute)", ratio: latency, target: 2, better: "lower" });
  const wrong =
    shm.reduce((a, r) => a + r.wrong, 0) +
    (typeof mpi === "string" ? 0 : mpi.wrong) +
    (typeof plaitMpi === "string" ? 0 : plaitMpi.wrong);
  if (wrong) throw new Error(`allreduce: ${wrong} wrong elements`);
  report("allreduce", rows, checks, {
    ranks: RANKS,
    dtype: "f32",
    op: "sum",
    inPlace: true,
    samples: SAMPLES,
    loadAverage: [loadBefore, loadAfter],
    mpi: typeof mpi === "string" ? mpi : `mpirun --allow-run-as-root --oversubscribe -np ${RANKS}`,
    plaitMpi: typeof plaitMpi === "string" ? plaitMpi : "MpiComm.world(), threads 1, same mpirun",
  });
}
