import { availableParallelism } from "node:os";
import { defaultSmallBytes } from "../comm/shm-control.ts";
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
 * How long each rank polls before it sleeps in a collective: PLAIT_SHM_SPIN_MS when set, else
 * 1 ms when the world's threads (ranks × kernel threads) fit the cores, so that a peer arriving a
 * little later is met without a 15–90 µs wake-up; the comm's short default when ranks share
 * cores, where a spinning rank would only delay the peer it waits for.
 */
export function spinMsFor(devices: number, threads: number): number | undefined {
  const env = readEnv("PLAIT_SHM_SPIN_MS");
  if (env !== undefined && env !== "") {
    const ms = Number(env);
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= 1000)) {
      throw new RangeError(
        `plait: PLAIT_SHM_SPIN_MS must be a number of milliseconds from 0 to 1000, got ${JSON.stringify(env)}`,
      );
    }
    return ms;
  }
  return devices * threads <= availableParallelism() ? 1 : undefined;
}

/**
 * The world's one-barrier allreduce limit (see ShmComm): PLAIT_SHM_SMALL_BYTES when set, else
 * none when ranks spin on cores of their own, where the two-barrier slice path is faster at every
 * size (2 ranks, 4 KiB: 2.7 µs against 3.7 µs: a spinning barrier costs less than the staging
 * copies), else the backend's default, because a barrier between ranks that share cores costs a
 * futex wake-up.
 */
export function smallBytesFor(devices: number, spinMs: number | undefined): number {
  const env = readEnv("PLAIT_SHM_SMALL_BYTES");
  if (env !== undefined && env !== "") {
    const n = Number(env);
    const max = 16 << 20;
    if (!Number.isInteger(n) || n < 0 || n > max || n % 64 !== 0) {
      throw new RangeError(
        `plait: PLAIT_SHM_SMALL_BYTES must be a multiple of 64 from 0 to ${max}, got ${JSON.stringify(env)}`,
      );
    }
    return n;
  }
  return spinMs === undefined ? defaultSmallBytes(devices) : 0;
}
