import { pathToFileURL } from "node:url";
import { HierComm } from "../comm/hier.ts";
import { DEFAULT_TIMEOUT_MS, ShmComm } from "../comm/shm.ts";
import { checkTimeoutMs } from "../comm/validate.ts";
import { checkOptions } from "../core/options.ts";
import { configure, runtime, runtimeStarted } from "../core/runtime.ts";
import type { RankContext } from "./context.ts";
import { type Devices, parseDevices, smallBytesFor, spinMsFor, threadsPerRank } from "./devices.ts";
import { agreeOnDevices, type ProcessWorld, processWorld } from "./external.ts";
import { World } from "./world.ts";

export interface SpawnOptions {
  /** Ranks: a positive integer up to 256, or "auto" (one per core). Default 1. */
  devices?: Devices;
  /** Passed (structured-cloned) to every rank's function as its second argument. */
  args?: unknown;
  /** Default timeout of every collective, in ms (10 minutes unless set). */
  timeoutMs?: number;
}

const SPAWN_OPTIONS = ["devices", "args", "timeoutMs"] as const;

/**
 * Runs `module`'s exported function `fn(ctx, args)` on `devices` worker threads that share this
 * thread's memory and kernels (Lightning's DDPSpawn, with threads), and resolves with their
 * return values (structured-cloned) in rank order. If a rank throws or its worker exits, every
 * other rank's collectives reject, every worker is terminated, and the promise rejects with a
 * CommError naming the rank and its error. A rank that does not come to a collective within the
 * timeout is stopped (with the others), and the promise rejects naming it.
 *
 * In a process started by an external launcher (mpirun, srun --mpi=pmix), each process runs
 * `devices` ranks of a world of processes × devices (ranks of a process are consecutive; the
 * comm is MPI, or a HierComm when devices > 1): this thread runs the process's first rank itself,
 * and the promise resolves with this process's ranks' values only.
 */
export async function spawn<R = unknown>(module: string | URL, fn: string, options?: SpawnOptions): Promise<R[]> {
  const href = moduleURL(module);
  if (typeof fn !== "string" || fn === "") {
    throw new TypeError(
      `plait: spawn: argument fn must be the name of an exported function, got ${JSON.stringify(fn)}`,
    );
  }
  const opts = checkOptions("spawn", options, SPAWN_OPTIONS);
  const devices = parseDevices("spawn", opts.devices ?? 1);
  const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeoutMs("spawn", opts.timeoutMs);
  const outer = processWorld("spawn", { timeoutMs: opts.timeoutMs, devices });
  if (outer) return spawnAmong<R>(outer, href, fn, devices, opts.args, timeoutMs);
  const threads = threadsPerRank(devices);
  const spinMs = spinMsFor(devices, threads);
  const world = new World({
    name: "spawn",
    worldSize: devices,
    firstRank: 0,
    mode: "spawn",
    module: href,
    fn,
    args: opts.args,
    threads,
    timeoutMs,
    spinMs,
    smallBytes: smallBytesFor(devices, spinMs),
  });
  try {
    return (await world.done) as R[];
  } finally {
    world.release();
  }
}

async function spawnAmong<R>(
  w: ProcessWorld,
  href: string,
  fn: string,
  devices: number,
  args: unknown,
  timeoutMs: number,
): Promise<R[]> {
  await agreeOnDevices("spawn", w, devices);
  const mod = await import(href);
  if (typeof mod[fn] !== "function") {
    const names = Object.keys(mod).join(", ") || "nothing";
    throw new TypeError(`plait: spawn: ${href} has no exported function ${fn} (it exports ${names})`);
  }
  const { mpi } = w;
  const threads = threadsPerRank(devices * mpi.localSize);
  if (!runtimeStarted()) configure({ threads });
  const mine = structuredClone(args);
  if (devices === 1) {
    const ctx: RankContext = Object.freeze({
      rank: mpi.rank,
      worldSize: mpi.worldSize,
      comm: mpi,
      isMain: mpi.rank === 0,
    });
    return [await mod[fn](ctx, mine)];
  }
  const spinMs = spinMsFor(devices * mpi.localSize, Math.max(threads, runtime().threads));
  const world = new World({
    name: "spawn",
    worldSize: devices,
    firstRank: 1,
    mode: "spawn",
    module: href,
    fn,
    args,
    threads,
    timeoutMs,
    spinMs,
    smallBytes: smallBytesFor(devices, spinMs),
    outer: { processRank: w.processRank, processes: w.processes },
  });
  const shm = new ShmComm(runtime().memory, world.control, 0, { timeoutMs, spinMs });
  try {
    await world.ready;
    const comm = new HierComm(shm, mpi, w.processRank, w.processes);
    const ctx: RankContext = Object.freeze({
      rank: comm.rank,
      worldSize: comm.worldSize,
      comm,
      isMain: comm.rank === 0,
    });
    let first: R;
    try {
      first = await mod[fn](ctx, mine);
    } catch (e) {
      shm.fail(e);
      await world.terminate();
      throw e;
    }
    shm.end();
    return [first, ...((await world.done) as R[])];
  } finally {
    world.release();
  }
}

function moduleURL(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (typeof module === "string" && module !== "") {
    return /^[a-z][a-z0-9+.-]*:/i.test(module) ? module : pathToFileURL(module).href;
  }
  throw new TypeError(`plait: spawn: argument module must be a URL or a path, got ${JSON.stringify(module)}`);
}
