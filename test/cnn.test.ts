// sequential, the layers, cnn and summary; a model with buffers (batchNorm) trained through
// train() with valueAndGradWithBuffers, its running statistics checkpointed.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import {
  cnn,
  layers,
  load,
  save,
  scope,
  sequential,
  sgd,
  softmaxCrossEntropy,
  summary,
  type Tensor,
  type TrainState,
  type Tree,
  tensor,
  train,
  treeLeaves,
  valueAndGrad,
  valueAndGradWithBuffers,
  withPrecision,
} from "../src/index.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { gradCheck, type Params, randTensor } from "./ops-gradcheck.ts";

/** The leaves of a { layer: { name: tensor } } tree as one flat record ("1.w"), and back. */
const flat = (t: Record<string, Record<string, Tensor>>): Params =>
  Object.fromEntries(Object.entries(t).flatMap(([i, g]) => Object.entries(g).map(([k, v]) => [`${i}.${k}`, v])));
function nest(p: Params): Record<string, Record<string, Tensor>> {
  const out: Record<string, Record<string, Tensor>> = {};
  for (const [key, v] of Object.entries(p)) {
    const [i, k] = key.split(".");
    out[i] ??= {};
    out[i][k] = v;
  }
  return out;
}

describe("sequential and cnn", () => {
  it("cnn() builds conv-relu-pool ×2 → linear: params, logits shape, summary with the total count", () => {
    scope(() => {
      const model = cnn();
      const params = model.init(new Rng(0));
      expect(Object.keys(params)).toEqual(["1", "4", "8"]);
      expect(params[1].w.shape).toEqual([16, 1, 3, 3]);
      expect(params[4].w.shape).toEqual([32, 16, 3, 3]);
      expect(params[8].w.shape).toEqual([32 * 7 * 7, 10]);
      const x = randTensor(new Rng(1), [3, 784], "f32");
      expect(model.apply(params, x).shape).toEqual([3, 10]);
      const text = summary(params);
      expect(text.split("\n")).toEqual([
        "path  shape           dtype  params",
        "1.b   [16]            f32        16",
        "1.w   [16, 1, 3, 3]   f32       144",
        "4.b   [32]            f32        32",
        "4.w   [32, 16, 3, 3]  f32     4,608",
        "8.b   [10]            f32        10",
        "8.w   [1568, 10]      f32    15,680",
        "total: 20,490 parameters in 6 tensors",
      ]);
      expect(model.hasBuffers).toBe(false);
      const bn = summary(cnn({ batchNorm: true }).init(new Rng(0)));
      expect(bn.split("\n").map((l) => l.split(" ")[0])).toEqual([
        "path",
        "1.b",
        "1.w",
        "2.beta",
        "2.gamma",
        "5.b",
        "5.w",
        "6.beta",
        "6.gamma",
        "10.b",
        "10.w",
        "total:",
      ]);
      expect(bn).toContain("total: 20,586 parameters in 10 tensors");
    });
  });

  it("checks params where they meet the model, naming the path, the layer and the shape", () => {
    scope(() => {
      const model = cnn({ channels: [4, 8] });
      const params = model.init(new Rng(0));
      const x = randTensor(new Rng(1), [2, 784], "f32");
      const wrong = { ...params, 4: { ...params[4], w: randTensor(new Rng(2), [8, 3, 3, 3], "f32") } };
      expect(() => model.apply(wrong, x)).toThrow(
        "params.4.w is f32[8, 3, 3, 3], expected a float tensor [8, 4, 3, 3] for conv2d(4→8, 3×3)",
      );
      expect(() => model.apply({ ...params, 2: params[1] }, x)).toThrow(
        "params.2 is not a layer with params (those are 1, 4, 8)",
      );
      expect(() => model.apply({ ...params, 1: { ...params[1], z: params[1].b } }, x)).toThrow(
        "params.1.z is not a param of conv2d(1→4, 3×3)",
      );
      expect(() => model.apply(params, randTensor(new Rng(1), [2, 1, 14, 14], "f32"))).toThrow("reshape");
      expect(() => sequential([])).toThrow("sequential: argument layers must be a non-empty array");
      expect(() => layers.conv2d({ in: 0, out: 2, kernel: 3 })).toThrow(
        "layers.conv2d: option in must be a positive integer",
      );
      expect(() => summary({ a: 3 } as never)).toThrow("summary: a is number 3");
    });
  });

  it("gradients through a whole small CNN with batchNorm pass the float64 gradient check", () => {
    scope(() => {
      const model = cnn({ input: [2, 8, 8], channels: [3, 2], classes: 3, batchNorm: true, dtype: "f64" });
      const params = flat(model.init(new Rng(4)) as never);
      const x = randTensor(new Rng(5), [3, 2 * 8 * 8]);
      const r = randTensor(new Rng(6), [3, 3]);
      gradCheck(params, (p) => sum(mul(model.apply(nest(p), x, { train: true }), r)), { rtol: 1e-5, atol: 1e-7 });
    });
  });

  it("dropout is the identity in evaluation and needs an rng in training", () => {
    scope(() => {
      const m = sequential([layers.linear(4, 3), layers.dropout(0.5)]);
      const p = m.init(new Rng(0));
      const x = randTensor(new Rng(1), [2, 4], "f32");
      expect(m.apply(p, x).toArray()).toEqual(m.apply(p, x, { train: false }).toArray());
      expect(() => m.apply(p, x, { train: true })).toThrow("training mode needs opts.rng");
      const y = m.apply(p, x, { train: true, rng: new Rng(3) }).toArray();
      expect(y.some((v) => v === 0)).toBe(true);
    });
  });
});

describe("the CNN under every precision", () => {
  for (const precision of ["64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true"] as const) {
    it(`takes training steps under ${precision} and lowers the loss on a fixed batch`, async () => {
      const model = cnn({ input: [1, 8, 8], channels: [4, 4], classes: 3 });
      const loss = (params: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(params, b.x), b.y);
      const trainer = train(withPrecision(valueAndGrad(loss), precision), sgd({ lr: 0.05 }));
      let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
      const rng = new Rng(8);
      const batch = { x: randTensor(rng, [6, 64], "f32"), y: tensor(new Int32Array([0, 1, 2, 0, 1, 2]), [6]) };
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await trainer(state, batch);
        state = r.state;
        losses.push(r.out.loss);
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.9);
    });
  }
});

describe("a model with buffers under train()", () => {
  it("updates batchNorm's running statistics in the train state each step, evaluates with them, and checkpoints them", async () => {
    const model = cnn({ input: [1, 8, 8], channels: [4, 4], classes: 3, batchNorm: true });
    expect(model.hasBuffers).toBe(true);
    const loss = (params: Tree, b: { x: Tensor; y: Tensor }, buffers: Tree) =>
      softmaxCrossEntropy(model.apply(params, b.x, { train: true, buffers }), b.y);
    const trainer = train(
      valueAndGradWithBuffers(loss, (d) => model.buffers(d)),
      sgd({ lr: 0.1 }),
    );
    let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
    const buffers = state.transforms.buffers as Record<string, Record<string, Tensor>>;
    expect(Object.keys(buffers)).toEqual(["2", "6"]);
    expect(buffers[2].mean.toArray()).toEqual([0, 0, 0, 0]);
    expect(buffers[2].var.toArray()).toEqual([1, 1, 1, 1]);
    const rng = new Rng(7);
    const batch = { x: randTensor(rng, [6, 64], "f32"), y: tensor(new Int32Array([0, 1, 2, 0, 1, 2]), [6]) };
    for (let i = 0; i < 3; i++) ({ state } = await trainer(state, batch));
    const after = state.transforms.buffers as Record<string, Record<string, Tensor>>;
    expect(after[2].mean.toArray().some((v) => v !== 0)).toBe(true);
    expect(after[6].var.toArray().some((v) => v !== 1)).toBe(true);
    // evaluation reads the running statistics; without them it refuses
    const evalOut = model.apply(state.params, batch.x, { buffers: after }).toArray();
    expect(() => model.apply(state.params, batch.x)).toThrow(
      "batchNorm: evaluation (train: false) normalises with the running statistics",
    );
    const dir = join(mkdtempSync(join(tmpdir(), "plait-bn-")), "ckpt");
    await save(dir, state);
    const restored = await trainer.restore(model.init(new Rng(9)) as unknown as Tree, load<TrainState>(dir));
    const rb = restored.transforms.buffers as Record<string, Record<string, Tensor>>;
    for (const [a, b] of treeLeaves(rb).map((t, i) => [t, treeLeaves(after)[i]]))
      expect(a.toArray()).toEqual(b.toArray());
    expect(model.apply(restored.params, batch.x, { buffers: rb }).toArray()).toEqual(evalOut);
  });
});
