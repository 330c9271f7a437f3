import { describe, expect, it } from "vitest";
import { full, ones } from "../src/core/fill.ts";
import { matmul } from "../src/core/gemm.ts";
import { configure } from "../src/core/runtime.ts";
import { tensor, zeros } from "../src/core/tensor.ts";
import { Batcher } from "../src/data/batcher.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { trainEpochs } from "../src/fit/trainEpochs.ts";
import { adam, adamw } from "../src/optim/adam.ts";
import { cosineDecay, linearWarmup, warmupCosine } from "../src/optim/schedule.ts";
import { sgd } from "../src/optim/sgd.ts";

// A misspelt option is an error naming it and the known ones, never silently dropped.
describe("options objects", () => {
  it("configure() rejects an unknown key before anything else, naming the known ones", () => {
    expect(() => configure({ thread: 2 } as any)).toThrow(
      "plait: configure(): unknown option thread; known: threads, memoryLimit, detectAnomaly, blas, deterministic",
    );
    expect(() => configure(null as any)).toThrow(/configure\(\): options must be an object, got null/);
  });

  it("tensor, zeros, full, ones and matmul reject unknown keys", () => {
    expect(() => tensor([1], [1], { dype: "f32" } as any)).toThrow("tensor(): unknown option dype; known: dtype");
    expect(() => zeros([1], { type: "f32" } as any)).toThrow("zeros(): unknown option type; known: dtype");
    expect(() => full([1], 2, { dtype: "f32", fill: 1 } as any)).toThrow("full(): unknown option fill");
    expect(() => ones([1], "f32" as any)).toThrow("ones(): options must be an object, got string");
    const a = tensor([1, 2, 3, 4], [2, 2]);
    expect(() => matmul(a, a, { transposeB: true } as any)).toThrow(
      "matmul: unknown option transposeB; known: transA, transB, bias, out, accumulate, threads",
    );
    a.dispose();
  });

  it("optimizers and schedules reject unknown keys", () => {
    expect(() => sgd({ lr: 0.1, momentun: 0.9 } as any)).toThrow(
      "sgd: unknown option momentun; known: lr, momentum, nesterov, weightDecay, dampening",
    );
    expect(() => adam({ lr: 0.1, beta: 0.9 } as any)).toThrow(
      "adam: unknown option beta; known: lr, beta1, beta2, eps, weightDecay",
    );
    expect(() => adamw({ lr: 0.1, weight_decay: 0.1, epsilon: 1 } as any)).toThrow(
      "adamw: unknown options weight_decay, epsilon;",
    );
    expect(() => linearWarmup({ peak: 1, warmupSteps: 2, end: 0 } as any)).toThrow(
      "linearWarmup: unknown option end; known: peak, warmupSteps, start",
    );
    expect(() => cosineDecay({ init: 1, decaySteps: 2, steps: 3 } as any)).toThrow(
      "cosineDecay: unknown option steps; known: init, decaySteps, alpha",
    );
    expect(() => warmupCosine({ peak: 1, warmupSteps: 1, decaySteps: 3, alpha: 0 } as any)).toThrow(
      "warmupCosine: unknown option alpha; known: peak, warmupSteps, decaySteps, end, start",
    );
    // The known keys still work.
    expect(() => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0, nesterov: false })).not.toThrow();
  });

  it("data loaders and the epoch loop reject unknown keys", async () => {
    expect(() => new Batcher(10, { batchSize: 2, shufle: false } as any)).toThrow(
      "Batcher: unknown option shufle; known: batchSize, shuffle, seed, dropLast, rank, worldSize",
    );
    expect(() => new Batcher(10, { batchSize: 2, shuffle: "no" } as any)).toThrow(
      "Batcher: shuffle must be true or false, got no",
    );
    expect(() => loadMnist({ train: 10, validation: 5 } as any)).toThrow(
      "loadMnist: unknown option validation; known: train, test, seed",
    );
    await expect(
      trainEpochs({
        trainer: (() => {}) as any,
        state: {} as any,
        epochs: 0,
        batches: () => ({}) as any,
        epoch: 1,
      } as any),
    ).rejects.toThrow("trainEpochs: unknown option epoch; known: trainer, state, epochs, batches, evaluate, onStep");
  });
});
