import { checkOptions } from "../core/options.ts";
import type { Tree } from "../core/tree.ts";
import { runUpdate } from "./half.ts";
import { checkBoolean, checkLearningRate, checkNumber, lrAt } from "./hyper.ts";
import { matchingLeaves, paramLeaves } from "./leaves.ts";
import { initState, slotLeaves } from "./state.ts";
import type { LearningRate, Optimizer, OptState } from "./types.ts";

export interface SgdOptions {
  lr: LearningRate;
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (torch's weight_decay). */
  weightDecay?: number;
  dampening?: number;
}

const SGD_OPTIONS = ["lr", "momentum", "nesterov", "weightDecay", "dampening"] as const;

/**
 * Stochastic gradient descent with torch.optim.SGD's update rule (see kernels/as/optim_sgd.ts):
 *
 *   g' = g + weightDecay·p
 *   buf = g' on the first step, then momentum·buf + (1 − dampening)·g'
 *   p -= lr · (nesterov ? g' + momentum·buf : buf)        (p -= lr·g' when momentum is 0)
 *
 * State slots: `{ momentum }` (torch's momentum_buffer) when momentum ≠ 0, none otherwise.
 */
export function sgd(opts: SgdOptions): Optimizer {
  const op = "sgd";
  const options = checkOptions(op, opts, SGD_OPTIONS);
  const lr = checkLearningRate(op, options.lr);
  const momentum = checkNumber(op, "momentum", options.momentum ?? 0, { min: 0 });
  const dampening = checkNumber(op, "dampening", options.dampening ?? 0);
  const weightDecay = checkNumber(op, "weightDecay", options.weightDecay ?? 0, { min: 0 });
  const nesterov = checkBoolean(op, "nesterov", options.nesterov ?? false);
  if (nesterov && (momentum === 0 || dampening !== 0)) {
    throw new RangeError(
      `plait: sgd: nesterov needs momentum > 0 and dampening 0, got momentum ${momentum}, dampening ${dampening}`,
    );
  }
  const hyper = { lr: typeof lr === "number" ? lr : "schedule", momentum, dampening, weightDecay, nesterov };
  const names = momentum !== 0 ? ["momentum"] : [];

  return {
    init(params: Tree): OptState {
      paramLeaves("sgd.init", params);
      return initState("sgd", hyper, params, names);
    },

    update(params: Tree, grads: Tree, state: OptState): OptState {
      const op = "sgd.update";
      const p = paramLeaves(op, params);
      const g = matchingLeaves(op, "grads", grads, p);
      const [buf] = slotLeaves(op, "sgd", state, names, p);
      const rate = lrAt(op, lr, state.step);
      const first = state.step === 0 ? 1 : 0;
      p.leaves.forEach((leaf, i) => {
        if (buf) {
          runUpdate(
            "sgd_momentum",
            leaf,
            g[i],
            [buf[i]],
            [rate, weightDecay, momentum, 1 - dampening, nesterov ? 1 : 0, first],
          );
        } else runUpdate("sgd", leaf, g[i], [], [rate, weightDecay]);
      });
      return { ...state, step: state.step + 1 };
    },
  };
}
