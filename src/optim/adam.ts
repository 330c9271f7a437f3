import { checkOptions } from "../core/options.ts";
import { powInt } from "../core/portableMath.ts";
import { deterministic } from "../core/runtime.ts";
import type { Tree } from "../core/tree.ts";
import { runUpdate } from "./half.ts";
import { checkLearningRate, checkNumber, lrAt } from "./hyper.ts";
import { matchingLeaves, paramLeaves } from "./leaves.ts";
import { initState, slotLeaves } from "./state.ts";
import type { LearningRate, Optimizer, OptimizerKind, OptState } from "./types.ts";

export interface AdamOptions {
  lr: LearningRate;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** adam: L2 penalty added to the gradient (torch.optim.Adam); adamw: decoupled decay (torch.optim.AdamW). */
  weightDecay?: number;
}

/**
 * Adam with torch.optim.Adam's update rule (amsgrad off); `weightDecay` is an L2 term added to
 * the gradient. On update number t = step + 1 (see kernels/as/optim_adam.ts for the kernel):
 *
 *   g' = g + weightDecay·p
 *   m = β1·m + (1 − β1)·g'            (as torch's lerp)
 *   v = β2·v + (1 − β2)·g'²
 *   p -= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
 *
 * State slots: `{ m, v }` (torch's exp_avg, exp_avg_sq).
 */
export function adam(options: AdamOptions): Optimizer {
  return adamFamily("adam", options, 0);
}

/**
 * AdamW with torch.optim.AdamW's update rule: Adam without the L2 term, and the decoupled decay
 * p *= 1 − lr·weightDecay applied before the moment update (default weightDecay 0.01).
 */
export function adamw(options: AdamOptions): Optimizer {
  return adamFamily("adamw", options, 0.01);
}

const ADAM_OPTIONS = ["lr", "beta1", "beta2", "eps", "weightDecay"] as const;

function adamFamily(kind: OptimizerKind, opts: AdamOptions, defaultDecay: number): Optimizer {
  const options = checkOptions(kind, opts, ADAM_OPTIONS);
  const lr = checkLearningRate(kind, options.lr);
  const beta1 = checkNumber(kind, "beta1", options.beta1 ?? 0.9, { min: 0, max: 1, maxOpen: true });
  const beta2 = checkNumber(kind, "beta2", options.beta2 ?? 0.999, { min: 0, max: 1, maxOpen: true });
  const eps = checkNumber(kind, "eps", options.eps ?? 1e-8, { min: 0, minOpen: true });
  const weightDecay = checkNumber(kind, "weightDecay", options.weightDecay ?? defaultDecay, { min: 0 });
  const decoupled = kind === "adamw";
  const hyper = { lr: typeof lr === "number" ? lr : "schedule", beta1, beta2, eps, weightDecay };
  const names = ["m", "v"];

  return {
    init(params: Tree): OptState {
      paramLeaves(`${kind}.init`, params);
      return initState(kind, hyper, params, names);
    },

    update(params: Tree, grads: Tree, state: OptState): OptState {
      const op = `${kind}.update`;
      const p = paramLeaves(op, params);
      const g = matchingLeaves(op, "grads", grads, p);
      const [m, v] = slotLeaves(op, kind, state, names, p);
      const rate = lrAt(op, lr, state.step);
      const t = state.step + 1;
      // The scalars torch computes in double before the per-element pass.
      // Deterministic mode: ** is implementation-defined (V8 and JavaScriptCore differ in the last bit).
      const pow = deterministic() ? powInt : (b: number, n: number) => b ** n;
      const stepSize = rate / (1 - pow(beta1, t));
      const bc2Sqrt = Math.sqrt(1 - pow(beta2, t));
      const l2 = decoupled ? 0 : weightDecay;
      const decay = decoupled && weightDecay !== 0 ? 1 - rate * weightDecay : 1;
      const scalars = [stepSize, bc2Sqrt, eps, 1 - beta1, beta2, 1 - beta2, l2, decay];
      p.leaves.forEach((leaf, i) => {
        runUpdate("adam", leaf, g[i], [m[i], v[i]], scalars);
      });
      return { ...state, step: t };
    },
  };
}
