// Learning-rate schedules: plain functions of the optimizer's step count (0 on the first update),
// each matching an optax schedule, composable with joinSchedules.
import { checkOptions } from "../core/options.ts";
import { cosPi } from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import { checkNumber, show } from "./hyper.ts";
import type { Schedule } from "./types.ts";

function checkSteps(op: string, name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`plait: ${op}: option ${name} must be an integer ≥ ${min}, got ${show(value)}`);
  }
  return value;
}

/** The same value at every step (optax.constant_schedule). */
export function constant(lr: number): Schedule {
  const value = checkNumber("constant", "lr", lr);
  return () => value;
}

/**
 * From `start` to `peak` linearly over `warmupSteps` steps, then `peak` (optax.linear_schedule with
 * init_value = start, end_value = peak, transition_steps = warmupSteps; unlike optax, 0 warmup
 * steps means `peak` from the first step).
 */
export function linearWarmup(opts: { peak: number; warmupSteps: number; start?: number }): Schedule {
  const options = checkOptions("linearWarmup", opts, ["peak", "warmupSteps", "start"]);
  const peak = checkNumber("linearWarmup", "peak", options.peak);
  const start = checkNumber("linearWarmup", "start", options.start ?? 0);
  const steps = checkSteps("linearWarmup", "warmupSteps", options.warmupSteps, 0);
  if (steps === 0) return () => peak;
  // optax's form: (init − end)·(1 − t/T) + end, exactly `peak` once t reaches T.
  return (step) => (start - peak) * (1 - Math.min(Math.max(step, 0), steps) / steps) + peak;
}

/**
 * Half a cosine from `init` down to `alpha·init` over `decaySteps`, then constant
 * (optax.cosine_decay_schedule with init_value = init, decay_steps, alpha, exponent 1).
 */
export function cosineDecay(opts: { init: number; decaySteps: number; alpha?: number }): Schedule {
  const options = checkOptions("cosineDecay", opts, ["init", "decaySteps", "alpha"]);
  const init = checkNumber("cosineDecay", "init", options.init);
  const alpha = checkNumber("cosineDecay", "alpha", options.alpha ?? 0);
  const steps = checkSteps("cosineDecay", "decaySteps", options.decaySteps, 1);
  return (step) => {
    const t = Math.min(Math.max(step, 0), steps);
    // Deterministic mode: Math.cos is implementation-defined (V8 and JavaScriptCore differ in the last bit).
    const cosine = 0.5 * (1 + (deterministic() ? cosPi(t / steps) : Math.cos((Math.PI * t) / steps)));
    return init * ((1 - alpha) * cosine + alpha);
  };
}

/**
 * `schedules[0]` until `boundaries[0]`, then `schedules[1]` counted from that boundary, and so on
 * (optax.join_schedules).
 */
export function joinSchedules(schedules: readonly Schedule[], boundaries: readonly number[]): Schedule {
  if (schedules.length === 0 || schedules.some((s) => typeof s !== "function")) {
    throw new TypeError("plait: joinSchedules: argument schedules must be a non-empty array of functions");
  }
  if (boundaries.length !== schedules.length - 1) {
    throw new RangeError(
      `plait: joinSchedules: ${schedules.length} schedules need ${schedules.length - 1} boundaries, got ${boundaries.length}`,
    );
  }
  for (const [i, b] of boundaries.entries()) {
    checkSteps("joinSchedules", `boundaries[${i}]`, b, i === 0 ? 0 : boundaries[i - 1]);
  }
  return (step) => {
    let i = 0;
    while (i < boundaries.length && step >= boundaries[i]) i++;
    return schedules[i](i === 0 ? step : step - boundaries[i - 1]);
  };
}

/**
 * Linear warmup from `start` to `peak` over `warmupSteps`, then cosine decay to `end` at step
 * `decaySteps` (which counts the warmup), then `end` (optax.warmup_cosine_decay_schedule with
 * init_value = start, peak_value = peak, warmup_steps, decay_steps, end_value = end).
 */
export function warmupCosine(opts: {
  peak: number;
  warmupSteps: number;
  decaySteps: number;
  end?: number;
  start?: number;
}): Schedule {
  const options = checkOptions("warmupCosine", opts, ["peak", "warmupSteps", "decaySteps", "end", "start"]);
  const peak = checkNumber("warmupCosine", "peak", options.peak);
  const end = checkNumber("warmupCosine", "end", options.end ?? 0);
  const start = checkNumber("warmupCosine", "start", options.start ?? 0);
  const warmupSteps = checkSteps("warmupCosine", "warmupSteps", options.warmupSteps, 0);
  const decaySteps = checkSteps("warmupCosine", "decaySteps", options.decaySteps, warmupSteps + 1);
  return joinSchedules(
    [
      linearWarmup({ peak, warmupSteps, start }),
      cosineDecay({ init: peak, decaySteps: decaySteps - warmupSteps, alpha: peak === 0 ? 0 : end / peak }),
    ],
    [warmupSteps],
  );
}
