import type { Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import type { Rng } from "../data/rng.ts";
import { mlp } from "../nn/mlp.ts";
import { cnn } from "../nn/sequential.ts";

// The models `plait demo --model` trains on the MNIST digits, and each one's defaults.

export const DEMO_MODELS = ["mlp", "cnn", "gpt"] as const;
export type DemoModelName = (typeof DEMO_MODELS)[number];

export interface DemoModel {
  /** For the log line and the chart's title, e.g. "MLP 784-256-10". */
  readonly label: string;
  init(rng: Rng): Tree;
  /** Logits [batch, 10] for images [batch, 784]. */
  apply(params: Tree, x: Tensor): Tensor;
}

/** Per model: flags left unset take these (the MLP's are the demo's historical defaults). */
export const DEMO_DEFAULTS: Record<DemoModelName, { epochs: number; lr: number }> = {
  mlp: { epochs: 10, lr: 0.1 },
  // measured (seed 0): 95.5% after epoch 1, 97.15% after 2, 97.65% after 3 and 4
  cnn: { epochs: 4, lr: 0.05 },
  // the character-level transformer on names (demo-gpt.ts): Adam's peak lr, warmup then cosine
  // measured (seed 0, 2 loaded cores): validation 2.31, 2.24, 2.16, 2.12 nats/char after epochs 1–4
  gpt: { epochs: 4, lr: 0.01 },
};

export function demoModel(name: DemoModelName, hidden: number): DemoModel {
  if (name === "gpt") throw new Error("the gpt demo trains on names, not digits: it runs in demo-gpt.ts");
  if (name === "cnn") {
    const model = cnn();
    return {
      label: "CNN conv3×3(16)-pool-conv3×3(32)-pool-linear",
      init: (rng) => model.init(rng) as unknown as Tree,
      apply: (params, x) => model.apply(params, x),
    };
  }
  const model = mlp([784, hidden, 10]);
  return {
    label: `MLP 784-${hidden}-10`,
    init: (rng) => model.init(rng) as unknown as Tree,
    apply: (params, x) => model.apply(params, x),
  };
}
