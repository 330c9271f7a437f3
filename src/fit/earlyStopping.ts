import { checkOptions } from "../core/options.ts";
import { type Callback, checkMode, checkMonitor, type Mode, monitored } from "./callback.ts";

export interface EarlyStoppingOptions {
  /** The metric to watch (logged every epoch). */
  monitor: string;
  /** Epochs without improvement before the run stops (default 3). */
  patience?: number;
  /** An improvement must beat the best by more than this (default 0; its sign is ignored). */
  minDelta?: number;
  /** "min" (default): lower is better; "max": higher is better. */
  mode?: Mode;
  /** Stop as soon as the metric is NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

export interface EarlyStoppingState {
  /** The best value so far (+Infinity for "min", -Infinity for "max" before the first epoch). */
  best: number;
  /** Epochs since the last improvement. */
  wait: number;
  /** The epoch that stopped the run (0 while it goes on). */
  stoppedEpoch: number;
}

const OP = "earlyStopping";
const OPTIONS = ["monitor", "patience", "minDelta", "mode", "checkFinite"] as const;

/**
 * Lightning's EarlyStopping as a value. After each epoch: a non-finite value stops the run (with
 * `checkFinite`); a value better than the best by more than `minDelta` (for "min": value <
 * best − minDelta) becomes the best and resets the count; anything else counts one epoch, and the
 * run stops once `patience` epochs in a row have not improved (patience 0: at the first). The
 * metrics are the same on every rank, so every rank stops after the same epoch.
 */
export function earlyStopping(options: EarlyStoppingOptions): Callback<EarlyStoppingState> {
  const opts = checkOptions(OP, options, OPTIONS);
  const monitor = checkMonitor(OP, opts.monitor);
  const mode = checkMode(OP, opts.mode ?? "min");
  const patience = opts.patience ?? 3;
  if (!Number.isInteger(patience) || patience < 0) {
    throw new RangeError(`plait: ${OP}: option patience must be an integer ≥ 0, got ${String(patience)}`);
  }
  const delta = opts.minDelta ?? 0;
  if (typeof delta !== "number" || !Number.isFinite(delta)) {
    throw new RangeError(`plait: ${OP}: option minDelta must be a finite number, got ${String(delta)}`);
  }
  const checkFinite = opts.checkFinite ?? true;
  const minDelta = Math.abs(delta);
  const improves = (v: number, best: number) => (mode === "min" ? v + minDelta < best : v - minDelta > best);

  return {
    name: OP,
    init: () => ({ best: mode === "min" ? Infinity : -Infinity, wait: 0, stoppedEpoch: 0 }),
    epochEnd(state, e) {
      const v = monitored(OP, monitor, e.metrics);
      const shown = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));
      if (checkFinite && !Number.isFinite(v)) {
        return {
          state: { ...state, stoppedEpoch: e.epoch },
          stop: `${monitor} = ${v} is not finite (the best was ${shown(state.best)})`,
        };
      }
      if (improves(v, state.best)) return { state: { ...state, best: v, wait: 0 } };
      const wait = state.wait + 1;
      if (wait < patience) return { state: { ...state, wait } };
      return {
        state: { ...state, wait, stoppedEpoch: e.epoch },
        stop: `${monitor} did not improve by more than ${minDelta} in the last ${wait} epochs (the best was ${shown(state.best)})`,
      };
    },
  };
}
