// User-written transforms: the docs' stochastic-rounding example, and a transform written with
// `transform(...)` around (and inside) every built-in, whose init, gather, save and restore must
// work as the built-ins' own do, bit for bit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { withStochasticRounding } from "../docs/examples/stochastic-rounding.ts";
import { load, save } from "../src/checkpoint/index.ts";
import { Rng } from "../src/data/rng.ts";
import {
  type Ctx,
  type InitCtx,
  localComm,
  type Step,
  type StepLike,
  scope,
  stateOf,
  Tensor,
  type TrainState,
  type Tree,
  tensor,
  toStep,
  transform,
  treeLeaves,
  withAccumulation,
  withAMP,
  withDDP,
  withDeepSpeed,
  withFSDP,
  withGradClip,
  withPrecision,
  withState,
  withZeRO,
  zeros,
} from "../src/index.ts";
import { type Batch, batchOrder, bytesOf, mnistModel, trainMlp } from "./precision-helpers.ts";

const world = (): InitCtx => ({ rank: 0, worldSize: 1, comm: localComm() });

const ctx = (state: Readonly<Record<string, unknown>> = {}): Ctx => ({
  ...world(),
  lossScale: 1,
  computeDType: "f32",
  state,
});

const value = 1 + 2 ** -10; // between the bf16 neighbours 1 and 1 + 2^-7, an eighth of the way up
const constantGrads: Step<null> = toStep("constantGrads", () => ({
  loss: 0,
  grads: [tensor(new Float32Array(4096).fill(value))],
}));

describe("the custom-plugin example (docs/custom-plugin.md)", () => {
  it("rounds to bf16 neighbours, unbiased on average", () =>
    scope(async () => {
      const step = withStochasticRounding(constantGrads, { seed: 1 });
      const { state } = await step.init(null as never, world());
      const out = await step.run(null as never, null, ctx(state));
      const got = (out.grads as Tensor[])[0].toArray();
      const up = got.filter((x) => x === 1 + 2 ** -7).length;
      expect(got.every((x) => x === 1 || x === 1 + 2 ** -7)).toBe(true);
      // P(up) = 1/8: 512 expected of 4096; 5 standard deviations is ±106
      expect(Math.abs(up - 512)).toBeLessThan(106);
    }));

  it("keeps its random stream in the explicit state, so a resumed run repeats the bits", () =>
    scope(async () => {
      const step = withStochasticRounding(constantGrads, { seed: 7 });
      const { state } = await step.init(null as never, world());
      const first = await step.run(null as never, null, ctx(state));
      const after = { ...state, ...first.state };
      const second = await step.run(null as never, null, ctx(after));
      const resumed = await step.run(null as never, null, ctx(JSON.parse(JSON.stringify(after))));
      expect((resumed.grads as Tensor[])[0].toArray()).toEqual((second.grads as Tensor[])[0].toArray());
      expect((second.grads as Tensor[])[0].toArray()).not.toEqual((first.grads as Tensor[])[0].toArray());
    }));
});

// ------------------------------------------------------------------------------------------

/** withStepCount's state: how many updates passed it, and the sum of their losses (a tensor, so restore checks it). */
interface CountState {
  readonly updates: number;
  readonly lossSum: Tensor;
}

/**
 * A user-written transform: counts the updates that pass it (skipped and accumulating outputs
 * do not reach `update`) and sums their losses, in its own state under "count"; it reports the
 * count as metrics.updates. Its state exists from the init on: run without it, it throws.
 */
function withStepCount<B>(inner: StepLike<B>): Step<B> {
  const current = (c: Ctx) => {
    const st = stateOf<CountState>(c, "count");
    if (st === undefined) throw new Error("withStepCount: ctx.state.count is missing: start from trainer.init");
    return st;
  };
  return transform(inner, {
    name: "withStepCount",
    key: "count",
    initState: () => ({ updates: 0, lossSum: zeros([1], { dtype: "f64" }) }) satisfies CountState,
    enter(params, batch, c) {
      current(c);
      return { params, batch, ctx: c };
    },
    update(out, c) {
      const st = current(c);
      const lossSum = new Tensor([1], "f64");
      lossSum.data()[0] = st.lossSum.data()[0] + out.loss;
      const next: CountState = { updates: st.updates + 1, lossSum };
      return withState({ ...out, metrics: { ...out.metrics, updates: next.updates } }, "count", next);
    },
  });
}

const root = mkdtempSync(join(tmpdir(), "plait-custom-plugin-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("a user-written transform with every built-in (world of 1)", () => {
  const model = mnistModel(16);
  const N = 5;
  const K = 3; // odd: under an accumulation of 2 the checkpoint falls mid-window
  const order = batchOrder(1).slice(0, N);

  /** Each built-in, the dtype of the params it holds, and how many of the N steps update. */
  const builtins: [string, (s: StepLike<Batch>) => Step<Batch>, string, number][] = [
    ["withAMP 16-mixed", (s) => withAMP(s, { precision: "16-mixed" }), "f32", N],
    ["withPrecision bf16-true", (s) => withPrecision(s, "bf16-true"), "bf16", N],
    ["withPrecision 64-true", (s) => withPrecision(s, "64-true"), "f64", N],
    ["withGradClip", (s) => withGradClip(s, { maxNorm: 0.5 }), "f32", N],
    ["withAccumulation", (s) => withAccumulation(s, 2), "f32", 2],
    ["withDDP", (s) => withDDP(s), "f32", N],
    ["withZeRO stage 2", (s) => withZeRO(s, { stage: 2 }), "f32", N],
    ["withFSDP", (s) => withFSDP(s), "f32", N],
    [
      "withDeepSpeed",
      (s) =>
        withDeepSpeed(s, {
          train_micro_batch_size_per_gpu: 32,
          gradient_accumulation_steps: 2,
          zero_optimization: { stage: 2 },
          bf16: { enabled: true },
        }).step,
      "f32",
      2,
    ],
  ];

  for (const [name, builtin, dtype, updates] of builtins) {
    for (const [where, wrap] of [
      ["around", (s: StepLike<Batch>) => withStepCount(builtin(s))],
      ["inside", (s: StepLike<Batch>) => builtin(withStepCount(s))],
    ] as const) {
      it(`${where} ${name}: init, gather, save and restore give the straight run's bits`, async () => {
        const straight = await trainMlp(model, wrap, order);
        const { trainer } = straight;
        // init: the user's state is there from the start, beside the built-in's
        const initial = model.init(new Rng(7)) as unknown as Tree;
        const fresh = await trainer.init(initial);
        const count = fresh.transforms.count as CountState;
        expect(count.updates).toBe(0);
        expect(count.lossSum.toArray()).toEqual([0]);
        // gather: the full params, in the structure and shapes the model's init gave
        const full = await trainer.gather(fresh);
        expect(treeLeaves(full).map((t) => t.describe())).toEqual(
          treeLeaves(initial).map((t) => `${dtype}[${t.shape.join(", ")}]`),
        );
        expect(trainer.step.name).toContain("withStepCount");

        // k steps, save, restore into a new trainer, N − k steps
        const first = await trainMlp(model, wrap, order.slice(0, K));
        // under accumulation the checkpoint holds a window's running sums (a fresh init has none)
        expect(first.outs.at(-1)?.accumulating === true).toBe(updates < N);
        const dir = join(root, `${where} ${name}`);
        save(dir, first.state); // a TrainState is a checkpoint state as it is
        const loaded = load<TrainState>(dir);
        const rest = await trainMlp(model, wrap, order.slice(K), loaded);

        const outs = [...first.outs, ...rest.outs];
        expect(outs.map((o) => o.loss)).toEqual(straight.outs.map((o) => o.loss));
        const a = await rest.trainer.gather(rest.state);
        const b = await trainer.gather(straight.state);
        expect(treeLeaves(a).map((t) => t.dtype)).toEqual(treeLeaves(b).map(() => dtype));
        expect(bytesOf(a)).toEqual(bytesOf(b));
        expect(bytesOf(rest.state.params)).toEqual(bytesOf(straight.state.params));
        expect(bytesOf(rest.state.opt.slots as Tree)).toEqual(bytesOf(straight.state.opt.slots as Tree));
        expect(rest.state.opt.step).toBe(straight.state.opt.step);
        // the user's state resumed too
        const got = rest.state.transforms.count as CountState;
        const want = straight.state.transforms.count as CountState;
        expect(got.updates).toBe(want.updates);
        expect(bytesOf([got.lossSum])).toEqual(bytesOf([want.lossSum]));
        if (where === "around") {
          expect(want.updates).toBe(updates);
          expect(outs.filter((o) => o.metrics?.updates !== undefined).length).toBe(updates);
        }
        expect(Object.keys(rest.state.transforms).sort()).toEqual(Object.keys(straight.state.transforms).sort());
        for (const t of [...treeLeaves(full), ...treeLeaves(a), ...treeLeaves(b)]) t.dispose();
      });
    }
  }

  it("restore still checks the user's state against a fresh init's", async () => {
    const wrap = (s: StepLike<Batch>) => withStepCount(withAccumulation(s, 2));
    const { state, trainer } = await trainMlp(model, wrap, order.slice(0, 1));
    const template = model.init(new Rng(7)) as unknown as Tree;
    const count = state.transforms.count as CountState;
    const bad = { ...count, lossSum: zeros([2], { dtype: "f64" }) };
    await expect(
      trainer.restore(template, { ...state, transforms: { ...state.transforms, count: bad } }),
    ).rejects.toThrow("plait: train.restore: loaded.transforms.count holds tensors [f64[2]], expected [f64[1]]");
    const { count: _, ...without } = state.transforms;
    await expect(trainer.restore(template, { ...state, transforms: without })).rejects.toThrow(
      "plait: train.restore: loaded.transforms has the states [accumulation], this step's transforms keep [accumulation, count]",
    );
    // the window's sums, which a fresh init does not have, are taken as the checkpoint holds them
    const restored = await trainer.restore(template, state);
    expect(restored.transforms).toBe(state.transforms);
  });

  it("run without its init, the user's transform says so", async () => {
    const step = withStepCount(withAMP(() => ({ loss: 0, grads: [] }), { precision: "bf16-mixed" }));
    await expect(step.run([], null, ctx())).rejects.toThrow(
      "withStepCount: ctx.state.count is missing: start from trainer.init",
    );
  });
});
