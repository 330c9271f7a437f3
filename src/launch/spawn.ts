import { pathToFileURL } from "node:url";
import { DEFAULT_TIMEOUT_MS } from "../comm/shm.ts";
import { checkTimeoutMs } from "../comm/validate.ts";
import { checkOptions } from "../core/options.ts";
import { type Devices, parseDevices, smallBytesFor, spinMsFor, threadsPerRank } from "./devices.ts";
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

function moduleURL(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (typeof module === "string" && module !== "") {
    return /^[a-z][a-z0-9+.-]*:/i.test(module) ? module : pathToFileURL(module).href;
  }
  throw new TypeError(`plait: spawn: argument module must be a URL or a path, got ${JSON.stringify(module)}`);
}
