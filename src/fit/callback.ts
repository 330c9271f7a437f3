import type { TrainState } from "../step/train.ts";
import type { LogFn } from "./metrics.ts";

/** What a callback's `log` hook sees, before the epoch's metrics are synced over the ranks. */
export interface EpochLogEvent {
  readonly epoch: number;
  /** The state after the epoch's last step. */
  readonly state: TrainState;
  /** The optimizer's step count (real updates) when the epoch began. */
  readonly firstStep: number;
  readonly log: LogFn;
}

/** What a callback's `epochEnd` hook sees: the same on every rank. */
export interface EpochEndEvent {
  readonly epoch: number;
  readonly epochs: number;
  /** Batches trained so far, over all epochs of this fit. */
  readonly step: number;
  /** The epoch's metrics, synced over the ranks: `loss` (mean training loss) and everything logged. */
  readonly metrics: Readonly<Record<string, number>>;
  readonly state: TrainState;
  readonly rank: number;
  readonly worldSize: number;
  /**
   * Every callback's state as it stands when this one runs (those before it in the list already
   * updated for this epoch), and this callback's index in it: what a checkpoint saves to resume.
   */
  readonly callbackStates: readonly unknown[];
  readonly index: number;
}

/** What `epochEnd` returns: the callback's next state, and a reason when it ends the run. */
export interface EpochEndResult<S> {
  state: S;
  stop?: string;
}

/**
 * A callback is a value (optax style): `init` makes its state, which `fit` holds, hands to each
 * hook and returns at the end (`callbackStates`, to resume). Nothing lasting lives in closures.
 * Hooks run on every rank in the same order; what only rank 0 should do (write a file) the hook
 * decides from `rank`.
 */
export interface Callback<S = unknown> {
  /** For messages: "modelCheckpoint", "earlyStopping", ... */
  readonly name: string;
  init(): S;
  /** Logs values of its own into the epoch (every rank, before the sync): e.g. the learning rate. */
  log?(state: S, e: EpochLogEvent): void;
  /** After the epoch's metrics are synced. */
  epochEnd?(state: S, e: EpochEndEvent): EpochEndResult<S> | Promise<EpochEndResult<S>>;
}

/** Which way a monitored metric improves. */
export type Mode = "min" | "max";

/** The monitored metric, or an error naming it and the metrics that were logged. */
export function monitored(op: string, monitor: string, metrics: Readonly<Record<string, number>>): number {
  if (!(monitor in metrics)) {
    const logged = Object.keys(metrics);
    throw new Error(
      `plait: ${op}: monitor "${monitor}" was never logged; logged: ${logged.length > 0 ? logged.join(", ") : "nothing"}`,
    );
  }
  return metrics[monitor];
}

export function checkMode(op: string, mode: unknown): Mode {
  if (mode !== "min" && mode !== "max") {
    throw new RangeError(`plait: ${op}: option mode must be "min" or "max", got ${JSON.stringify(mode)}`);
  }
  return mode;
}

export function checkMonitor(op: string, monitor: unknown): string {
  if (typeof monitor !== "string" || monitor === "") {
    throw new TypeError(`plait: ${op}: option monitor must be a metric's name, got ${JSON.stringify(monitor)}`);
  }
  return monitor;
}
