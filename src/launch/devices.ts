import { availableParallelism } from "node:os";
import { readEnv } from "../core/kernels.ts";

/** The most ranks one world may have (the shared memory has 256 kernel stack slots). */
export const MAX_DEVICES = 256;

/** Ranks in a world: a positive integer up to MAX_DEVICES, or "auto" (one per core). */
export type Devices = number | "auto";

export function parseDevices(name: string, devices: unknown): number {
  if (devices === "auto") return Math.min(MAX_DEVICES, availableParallelism());
  if (typeof devices !== "number" || !Number.isInteger(devices) || devices < 1 || devices > MAX_DEVICES) {
    throw new RangeError(
      `plait: ${name}: option devices must be an integer from 1 to ${MAX_DEVICES} or "auto", got ${JSON.stringify(devices) ?? String(devices)}`,
    );
  }
  return devices;
}

/**
 * Kernel threads for each rank's pool: PLAIT_THREADS when set, else the rank's share of the
 * cores, so N ranks with their pools never ask for more threads than there are cores.
 */
export function threadsPerRank(devices: number): number {
  const env = readEnv("PLAIT_THREADS");
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`plait: PLAIT_THREADS must be a positive integer, got ${JSON.stringify(env)}`);
    return n;
  }
  return Math.max(1, Math.floor(availableParallelism() / devices));
}

/**
 * How long each rank polls before it sleeps in a collective: 1 ms when the world's threads
 * (ranks × kernel threads) fit the cores, so that a peer arriving a little later is met without
 * a 15–90 µs wake-up; the comm's short default when ranks share cores, where a spinning rank
 * would only delay the peer it waits for.
 */
export function spinMsFor(devices: number, threads: number): number | undefined {
  return devices * threads <= availableParallelism() ? 1 : undefined;
}
