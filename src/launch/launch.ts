import { pathToFileURL } from "node:url";
import { HierComm } from "../comm/hier.ts";
import { localComm } from "../comm/local.ts";
import { DEFAULT_TIMEOUT_MS, ShmComm } from "../comm/shm.ts";
import { checkTimeoutMs } from "../comm/validate.ts";
import { checkOptions } from "../core/options.ts";
import { configure, runtime, runtimeStarted } from "../core/runtime.ts";
import { currentWorkerRank, type RankContext } from "./context.ts";
import { type Devices, parseDevices, smallBytesFor, spinMsFor, threadsPerRank } from "./devices.ts";
import { agreeOnDevices, type ProcessWorld, processWorld } from "./external.ts";
import { World } from "./world.ts";

export interface LaunchOptions {
  /** Ranks: a positive integer up to 256, or "auto" (one per core). Default 1. */
  devices?: Devices;
  /** The script the workers re-run; default: this process's main module (process.argv[1]). */
  script?: string | URL;
  /** Default timeout of every collective, in ms (10 minutes unless set). */
  timeoutMs?: number;
}

export interface LaunchContext extends RankContext {
  /**
   * Ends this rank's part in collectives (peers still waiting for it fail at once). On rank 0 it
   * then waits until every worker's script has ended, and rejects with the first rank's failure.
   * After a collective timed out (even one whose error the script caught) the rank that did not
   * arrive is stopped, so join() rejects at once, naming it, rather than wait for it.
   */
  join(): Promise<void>;
  /** On rank 0: terminates every worker now. On a worker: does nothing. */
  close(): Promise<void>;
}

const LAUNCH_OPTIONS = ["devices", "script", "timeoutMs"] as const;

let launched: LaunchContext | undefined;

/**
 * Turns this script into a world of `devices` ranks (Lightning's subprocess script launcher, with
 * threads): called at the top of a script, it re-runs the same script in devices − 1 worker
 * threads, which share this thread's memory and kernels; the calling thread is rank 0. Each
 * rank's `launch()` resolves to its own context. Every rank sees rank 0's `process.argv` and
 * `process.execArgv`, so flags parse alike everywhere. Workers exit when their script ends; a
 * rank that fails (throws, exits, or does not come to a collective in time) makes every other
 * rank's collectives reject, terminates the workers and sets a non-zero exit code. Code before
 * `launch()` runs on every rank.
 *
 * Under an external launcher (mpirun, srun --mpi=pmix, jsrun) the processes are already there:
 * launch() joins them over MPI instead (see processWorld). With devices 1 each process is one rank
 * and ctx.comm is an MpiComm; with devices k each process also runs k − 1 worker threads and the
 * world is processes × k ranks over a HierComm. join() then also waits for every process
 * (MPI_Barrier) and calls MPI_Finalize.
 */
export async function launch(options?: LaunchOptions): Promise<LaunchContext> {
  const opts = checkOptions("launch", options, LAUNCH_OPTIONS);
  const devices = parseDevices("launch", opts.devices ?? 1);
  const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs("launch", opts.timeoutMs);
  const worker = currentWorkerRank();
  if (worker) {
    if (devices !== worker.devices) {
      throw new RangeError(
        `plait: launch: this worker is rank ${worker.ctx.rank} of a world of ${worker.devices} threads per process, but launch() got devices ${devices}`,
      );
    }
    return {
      ...worker.ctx,
      join: async () => worker.end(),
      close: async () => {},
    };
  }
  if (launched) throw new Error("plait: launch: already called in this thread; use the context it returned");
  const outer = processWorld("launch", { timeoutMs: opts.timeoutMs, devices });
  if (outer) {
    launched = await launchAmong(outer, devices, opts.script, timeoutMs);
    return launched;
  }
  if (devices === 1) {
    launched = { rank: 0, worldSize: 1, comm: localComm(), isMain: true, join: async () => {}, close: async () => {} };
    return launched;
  }
  const threads = threadsPerRank(devices);
  // This rank's share of the cores, unless the script made tensors before launch(): then the
  // runtime is running and its pool stays as it is.
  if (!runtimeStarted()) configure({ threads });
  // rank 0's pool may be larger than its share when the runtime started before launch()
  const spinMs = spinMsFor(devices, Math.max(threads, runtime().threads));
  const world = new World({
    name: "launch",
    worldSize: devices,
    firstRank: 1,
    mode: "script",
    module: scriptURL(opts.script),
    threads,
    timeoutMs,
    spinMs,
    smallBytes: smallBytesFor(devices, spinMs),
    onFailure: (e) => {
      process.exitCode = 1;
      console.error(e.message);
    },
  });
  const comm = new ShmComm(runtime().memory, world.control, 0, { timeoutMs, spinMs });
  await world.ready;
  launched = {
    rank: 0,
    worldSize: devices,
    comm,
    isMain: true,
    join: async () => {
      comm.end();
      world.check(); // a timeout this rank caught: stop the late rank rather than wait for it
      await world.done;
    },
    close: () => world.terminate(),
  };
  return launched;
}

/**
 * launch() in a process an external launcher started (mpirun, srun --mpi=pmix): with devices 1
 * this process is one rank and the comm is MPI; with k devices it runs k − 1 more threads and the
 * world is processes × k ranks over a HierComm (shm inside the process, MPI across).
 */
async function launchAmong(
  w: ProcessWorld,
  devices: number,
  script: string | URL | undefined,
  timeoutMs: number,
): Promise<LaunchContext> {
  await agreeOnDevices("launch", w, devices);
  const { mpi } = w;
  const finish = async () => {
    await mpi.barrier();
    mpi.finalize();
  };
  if (devices === 1) {
    if (!runtimeStarted()) configure({ threads: threadsPerRank(mpi.localSize) });
    return {
      rank: mpi.rank,
      worldSize: mpi.worldSize,
      comm: mpi,
      isMain: mpi.rank === 0,
      join: finish,
      close: async () => {},
    };
  }
  const threads = threadsPerRank(devices * mpi.localSize);
  if (!runtimeStarted()) configure({ threads });
  const spinMs = spinMsFor(devices * mpi.localSize, Math.max(threads, runtime().threads));
  const world = new World({
    name: "launch",
    worldSize: devices,
    firstRank: 1,
    mode: "script",
    module: scriptURL(script),
    threads,
    timeoutMs,
    spinMs,
    smallBytes: smallBytesFor(devices, spinMs),
    outer: { processRank: w.processRank, processes: w.processes },
    onFailure: (e) => {
      const first = w.processRank * devices;
      process.stderr.write(
        `plait: process ${w.processRank} of ${w.processes} (global ranks ${first}–${first + devices - 1}; threads counted from 0 below): ${e.message}\n`,
      );
      mpi.abort(1);
    },
  });
  const shm = new ShmComm(runtime().memory, world.control, 0, { timeoutMs, spinMs });
  await world.ready;
  const comm = new HierComm(shm, mpi, w.processRank, w.processes);
  return {
    rank: comm.rank,
    worldSize: comm.worldSize,
    comm,
    isMain: comm.rank === 0,
    join: async () => {
      shm.end();
      world.check();
      await world.done;
      await finish();
    },
    close: () => world.terminate(),
  };
}

function scriptURL(script: string | URL | undefined): string {
  if (script instanceof URL) return script.href;
  if (typeof script === "string" && script !== "")
    return /^[a-z][a-z0-9+.-]*:/i.test(script) ? script : pathToFileURL(script).href;
  if (script !== undefined) {
    throw new TypeError(`plait: launch: option script must be a URL or a path, got ${JSON.stringify(script)}`);
  }
  const main = (globalThis as any).process?.argv?.[1];
  if (typeof main !== "string" || main === "") {
    throw new Error("plait: launch: cannot tell which script to re-run; pass { script: import.meta.url }");
  }
  return pathToFileURL(main).href;
}
