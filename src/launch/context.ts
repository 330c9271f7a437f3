import type { Comm } from "../comm/types.ts";

/** What every rank gets: who it is, the world's size, and the communicator over the world. */
export interface RankContext {
  readonly rank: number;
  readonly worldSize: number;
  readonly comm: Comm;
  /** True on rank 0. */
  readonly isMain: boolean;
}

/** How a launched worker was started; set by rank.ts before the user's module runs. */
export interface WorkerRank {
  readonly mode: "script" | "spawn";
  readonly ctx: RankContext;
  /** Ranks (threads) in this worker's process: ctx.worldSize divided by the processes of the job. */
  readonly devices: number;
  /** Marks the rank as done with collectives (its peers stop waiting for it). */
  readonly end: () => void;
}

let workerRank: WorkerRank | undefined;

export function setWorkerRank(w: WorkerRank): void {
  workerRank = w;
}

/** This thread's rank when it is a worker started by launch() or spawn(), else undefined. */
export function currentWorkerRank(): WorkerRank | undefined {
  return workerRank;
}
