// Suite "train-mpi": the demo's samples/s (MLP 784→256→10 on the 8,000 MNIST digits, DDP, global
// batch 64, 1 kernel thread per rank) as 2 MPI processes (`mpirun -np 2 plait demo`) against 2
// worker threads of one process (`plait demo --devices 2`), in the same run, ROUNDS times
// interleaved; the figure is each configuration's median samples/s over its rounds, as the demo's
// `--json` summary reports it (every epoch's samples over its wall time). The same bits come out
// of both (test/mpi-launch.test.ts); what differs is the cost of a collective: shared memory read in
// place against MPI messages between processes.
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import type { Measurement } from "./lib/measure.ts";
import { report } from "./lib/report.ts";

const EPOCHS = 4;
const ROUNDS = 3;
const CLI = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
const MPIRUN = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"];

function samplesPerSec(cmd: string, args: string[]): number {
  const out = execFileSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, PLAIT_THREADS: "1" },
    maxBuffer: 1 << 24,
  });
  return (JSON.parse(out.trim().split("\n").at(-1)!) as { samplesPerSec: number }).samplesPerSec;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(): Promise<void> {
  const demo = [CLI, "demo", "--epochs", String(EPOCHS), "--json", "--strategy", "ddp", "--out", "bench/results/runs"];
  try {
    execFileSync("mpirun", ["--version"], { stdio: "ignore" });
  } catch {
    console.log("train-mpi: mpirun not found, skipped (apt-get install -y openmpi-bin libopenmpi-dev)");
    return;
  }
  const loadBefore = loadavg()[0];
  const mpi: number[] = [];
  const threads: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    mpi.push(samplesPerSec("mpirun", [...MPIRUN, process.execPath, ...demo]));
    threads.push(samplesPerSec(process.execPath, [...demo, "--devices", "2"]));
  }
  const loadAfter = loadavg()[0];
  const rows: Measurement[] = [
    { case: "demo, DDP, batch 64", impl: "2 MPI processes (mpirun)", value: median(mpi), unit: "samples/s" },
    { case: "demo, DDP, batch 64", impl: "2 threads (shm)", value: median(threads), unit: "samples/s" },
  ];
  report("train-mpi", rows, [], { epochs: EPOCHS, rounds: ROUNDS, loadBefore, loadAfter, mpi, threads });
  console.log(
    `MPI processes / threads: ${(median(mpi) / median(threads)).toFixed(2)}× (no target: the cost of MPI messages against shared memory)`,
  );
  console.log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);
}
