// Joining an external launcher (mpirun, srun --mpi=pmix, jsrun): this process is one of several,
// and the comm across them is MPI. What launch() and spawn() do first, in every process.
import process from "node:process";
import { describeError } from "../comm/errors.ts";
import { launchedByMpi, MpiComm } from "../comm/mpi.ts";
import { configure, runtimeStarted } from "../core/runtime.ts";
import { Tensor } from "../core/tensor.ts";
import { type ClusterEnvironment, detectEnvironment, type EnvironmentMap, runtimeEnvironment } from "../env/detect.ts";
import { threadsPerRank } from "./devices.ts";

/** This process's place among the processes an external launcher started. */
export interface ProcessWorld {
  /** The cluster environment detected from the launcher's variables ("mpi", "slurm", "lsf", …). */
  readonly env: ClusterEnvironment;
  /** MPI_COMM_WORLD: one rank per process. */
  readonly mpi: MpiComm;
  readonly processRank: number;
  readonly processes: number;
}

let joined: ProcessWorld | null | undefined;

/**
 * The processes this one was launched among, joined over MPI (initialised once per process), or
 * undefined when it runs alone. Throws when a launcher started several processes without MPI
 * (each would train alone), when the environment's ranks disagree with MPI's, or when MPI cannot
 * start. In a joined process, an uncaught error prints `rank r failed` and calls MPI_Abort (every
 * process of the job ends, non-zero), and a normal exit calls MPI_Finalize. Before MPI starts (its
 * buffers live in plait's memory, which starts the runtime) the kernel pool gets this process's
 * share of the cores: cores / (processes on this node × `devices`), unless the runtime runs already.
 */
export function processWorld(
  name: string,
  opts: { timeoutMs?: number; devices?: number } = {},
): ProcessWorld | undefined {
  const { timeoutMs, devices = 1 } = opts;
  if (joined !== undefined) return joined ?? undefined;
  const vars = runtimeEnvironment();
  const env = detectEnvironment(vars);
  if (!launchedByMpi(vars)) {
    if (env.createsProcessesExternally && env.worldSize > 1) throw withoutMpi(name, env);
    joined = null;
    return undefined;
  }
  if (!runtimeStarted()) configure({ threads: threadsPerRank(devices * localProcesses(vars)) });
  const mpi = MpiComm.world(timeoutMs === undefined ? {} : { timeoutMs });
  if (env.worldSize !== mpi.worldSize || env.globalRank !== mpi.rank) {
    mpi.abort(1);
    throw new Error(
      `plait: ${name}: ${env.name} says this process is rank ${env.globalRank} of ${env.worldSize}, but MPI says rank ${mpi.rank} of ${mpi.worldSize}; start every process with the same launcher (srun --mpi=pmix, mpirun)`,
    );
  }
  joined = { env, mpi, processRank: mpi.rank, processes: mpi.worldSize };
  endWithJob(joined);
  return joined;
}

/** Processes on this node, as the launcher tells it (1 when it does not). */
function localProcesses(vars: EnvironmentMap): number {
  for (const name of [
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MPI_LOCALNRANKS",
    "PMI_LOCAL_SIZE",
    "PALS_LOCAL_SIZE",
    "SLURM_NTASKS_PER_NODE", // "4", or "4(x2)" for 4 on each of 2 nodes
    "LOCAL_WORLD_SIZE",
  ]) {
    const n = Number.parseInt(vars[name] ?? "", 10);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return 1;
}

function withoutMpi(name: string, env: ClusterEnvironment): Error {
  const how =
    env.name === "slurm"
      ? "srun started them without an MPI plugin: add --mpi=pmix (srun --mpi=pmix --ntasks-per-node=N node script.js)"
      : "launch with mpirun -np N node script.js, srun --mpi=pmix --ntasks-per-node=N node script.js, or Kubeflow's MPIJob (torchrun, Kubeflow's PyTorchJob and Lightning's LOCAL_RANK launches only bootstrap NCCL, on GPUs)";
  return new Error(
    `plait: ${name}: this process is rank ${env.globalRank} of ${env.worldSize} processes started by ${env.name}, but not by an MPI launcher; across processes plait's CPU collectives run on MPI, so each process would train alone. ${how}`,
  );
}

/** An uncaught error ends the whole job, naming this rank; a clean exit finalizes MPI. */
function endWithJob(w: ProcessWorld): void {
  const { mpi, processRank, processes } = w;
  process.on("uncaughtException", (e) => {
    process.stderr.write(`plait: rank ${processRank} of ${processes} processes failed: ${describeError(e)}\n`);
    if (e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    mpi.abort(1);
  });
  process.on("exit", (code) => {
    if (code === 0) mpi.finalize();
    else mpi.abort(code);
  });
}

/**
 * Checks that every process asked for the same number of ranks (threads) of its own: the world is
 * processes × devices, and a process with another count would misplace every rank after it. A
 * WORLD_SIZE variable, when set, must be that product.
 */
export async function agreeOnDevices(name: string, w: ProcessWorld, devices: number): Promise<void> {
  const declared = runtimeEnvironment().WORLD_SIZE;
  if (declared !== undefined && declared !== "" && Number(declared) !== w.processes * devices) {
    throw new Error(
      `plait: ${name}: WORLD_SIZE is ${JSON.stringify(declared)}, but the world is ${w.processes} processes × ${devices} devices = ${w.processes * devices} ranks; unset WORLD_SIZE or make it match`,
    );
  }
  const mine = new Tensor([1], "i32");
  mine.data()[0] = devices;
  const all = await w.mpi.allGather(mine);
  try {
    const counts = Array.from(all.data());
    if (counts.some((c) => c !== devices)) {
      throw new Error(
        `plait: ${name}: every process must ask for the same devices; per process rank: ${counts.map((c, r) => `${r}: ${c}`).join(", ")}`,
      );
    }
  } finally {
    mine.dispose();
    all.dispose();
  }
}
