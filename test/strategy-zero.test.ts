import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import { scope } from "../src/core/scope.ts";
import { tensor } from "../src/core/tensor.ts";
import { type Tree, treeLeaves, treeMap } from "../src/core/tree.ts";
import { spawn } from "../src/launch/index.ts";
import { sgd } from "../src/optim/sgd.ts";
import { withAMP } from "../src/precision/amp.ts";
import type { StepFn } from "../src/step/contract.ts";
import { train } from "../src/step/train.ts";
import { withDDP, withDeepSpeed, withZeRO } from "../src/strategy/index.ts";
import { identical, maxDiff, runRanks } from "./strategy-run.ts";

// withZeRO and the DeepSpeed config mapping. Multi-rank cases run test/fixtures/strategy-train.mjs
// in spawned worker threads (see test/strategy-ddp.test.ts); workers load plait from dist/:
// `npx tsc -p tsconfig.build.json` first.

const run = (args: Record<string, unknown>, devices = 2) => runRanks(devices, args);

describe("withZeRO with 2 ranks gives DDP's params bit for bit", () => {
  // The reduced gradient is the same rank-ordered mean (allReduce or reduceScatter) and the
  // optimizer update is elementwise, so sharding changes where each element is updated, not how.
  for (const optimizer of ["sgd", "adam"]) {
    it(`stages 1, 2 and 3 (${optimizer})`, async () => {
      const adam = optimizer === "adam";
      const [ddp] = await run({ adam, transforms: [["ddp", {}]] });
      for (const stage of [1, 2, 3]) {
        const ranks = await run({ adam, transforms: [["zero", stage]] });
        expect(identical(ranks[0].params, ddp.params)).toBe(true);
        expect(identical(ranks[1].params, ddp.params)).toBe(true);
        // 4 steps: setup (2 allGathers for the layout check, 1 broadcast), one gradient reduction
        // per step, one params allGather before each step (after each update), one at the end
        const reduce = stage === 1 ? { allReduce: 4 } : { reduceScatter: 4 };
        expect(ranks[0].counts).toEqual({ allGather: 2 + 4 + 1, broadcast: 1, ...reduce });
      }
    });
  }

  it("under withAccumulation and withAMP, stages 2 and 3 reduce once per window (coalesced)", async () => {
    const stack = (outer: unknown[]) => [outer, ["amp", "16-mixed"], ["acc", 4]];
    const args = { sameInit: true, steps: 8, globalBatch: 16 };
    const [ddp] = await run({ ...args, transforms: stack(["ddp", {}]) });
    for (const stage of [2, 3]) {
      const ranks = await run({ ...args, transforms: stack(["zero", stage]) });
      expect(identical(ranks[0].params, ddp.params)).toBe(true);
      expect(identical(ranks[1].params, ddp.params)).toBe(true);
      expect(ranks[0].counts.reduceScatter).toBe(2);
      // stage 2 gathers once per window (the params only change at its end); stage 3 before every micro-batch
      expect(ranks[0].counts.allGather).toBe(2 + (stage === 2 ? 2 : 8) + 1);
    }
  });

  it("withGradClip outside takes the global norm over the shards", async () => {
    // The clip coefficient comes from a sum of squares added in another order (per shard, then
    // over ranks), so it may differ from DDP's by an ulp or so; 1e-6 bounds that after 4 steps,
    // while a per-shard norm (no allReduce) would clip by a different factor on each rank.
    const [ddp] = await run({
      transforms: [
        ["clip", 0.5],
        ["ddp", {}],
      ],
    });
    const [unclipped] = await run({ transforms: [["ddp", {}]] });
    expect(maxDiff(ddp.params, unclipped.params)).toBeGreaterThan(1e-3); // the clip is active
    const ranks = await run({
      transforms: [
        ["clip", 0.5],
        ["zero", 2],
      ],
    });
    expect(maxDiff(ranks[0].params, ddp.params)).toBeLessThan(1e-6);
    expect(identical(ranks[0].params, ranks[1].params)).toBe(true);
  });

  it("a DeepSpeed config runs the same transforms as composing them by hand", async () => {
    const config = {
      zero_optimization: { stage: 2, overlap_comm: true },
      fp16: { enabled: true, initial_scale_power: 12 },
      gradient_accumulation_steps: 2,
      gradient_clipping: 0.5,
      train_micro_batch_size_per_gpu: 8,
    };
    const args = { sameInit: true, steps: 6, globalBatch: 16 };
    const ranks = await run({ ...args, transforms: [["deepspeed", config]] });
    const [ddp] = await run({
      ...args,
      transforms: [
        ["clip", 0.5],
        ["ddp", {}],
        ["amp", "16-mixed"],
        ["acc", 2],
      ],
    });
    expect(maxDiff(ranks[0].params, ddp.params)).toBeLessThan(1e-6);
    expect(identical(ranks[0].params, ranks[1].params)).toBe(true);
    expect(ranks[0].counts.reduceScatter).toBe(3);
  });
});

describe("withZeRO: bad input", () => {
  const loss: StepFn<null> = (params) => ({
    loss: 0,
    grads: treeLeaves(params).map((p) => tensor(new Float32Array(p.size), p.shape)),
  });
  const params = () => ({ w: tensor([1, 2, 3]), b: tensor([4]) });

  it("checks its options", () => {
    expect(() => withZeRO(loss, { stage: 4 as 1 })).toThrow("plait: withZeRO: option stage must be 1, 2 or 3, got 4");
    expect(() => withZeRO(loss, undefined as any)).toThrow(
      "plait: withZeRO: options must be an object like { stage: 2 }, got undefined",
    );
  });

  it("wants the shards its init made, and precision transforms inside", async () => {
    const comm = localComm();
    const zero = withZeRO(loss, { stage: 3 });
    const trainer = train(zero, sgd({ lr: 0.1 }), { comm });
    const state = await trainer.init(params());
    await expect(trainer({ ...state, params: params() }, null)).rejects.toThrow(
      "plait: withZeRO: the params must be this rank's shards as trainer.init makes them ({ shards: [[4]] }, one dtype)",
    );
    await expect(trainer({ ...state, transforms: {} }, null)).rejects.toThrow(
      "plait: withZeRO: ctx.state.zero.layout is missing: start from trainer.init(params) (or trainer.restore), which shards the params",
    );
    const t2 = train(withAMP(zero, { precision: "bf16-mixed" }), sgd({ lr: 0.1 }), { comm });
    await expect(t2(await t2.init(params()), null)).rejects.toThrow(
      "plait: withZeRO: ctx.computeDType is bf16 but the shards are f32: a precision transform outside withZeRO would see the flat shards, not the params; put it inside, as withZeRO(withAMP(step))",
    );
    await expect(trainer.init({ w: tensor([1]), i: tensor([1], [1], { dtype: "f64" }) })).rejects.toThrow(
      "plait: withZeRO: the params must be float tensors of one dtype to be flattened into shards: params.w is f32[1], params.i is f64[1]",
    );
  });

  it("refuses to nest with another distributing strategy", async () => {
    const comm = localComm();
    const trainer = train(withZeRO(withDDP(loss), { stage: 1 }), sgd({ lr: 0.1 }), { comm });
    await expect(trainer(await trainer.init(params()), null)).rejects.toThrow(
      "plait: withDDP: nested inside withZeRO; two strategies that both distribute do not compose",
    );
  });

  it("on one rank it is plain training, and gather() gives the params back", async () => {
    const comm = localComm();
    const trainer = train(withZeRO(loss, { stage: 2 }), sgd({ lr: 0.1 }), { comm });
    const given = params();
    const state = await trainer.init(given);
    expect(treeLeaves(state.params).map((t) => t.describe())).toEqual(["f32[4]"]);
    expect(state.transforms.zero).toMatchObject({ layout: { worldSize: 1, shapes: [[1], [3]] } });
    await scope(() => trainer(state, null));
    const full = (await trainer.gather(state)) as Record<string, Tree>;
    expect(Object.fromEntries(Object.entries(full).map(([k, v]) => [k, treeLeaves(v)[0].toArray()]))).toEqual({
      w: [1, 2, 3],
      b: [4],
    });
    expect(treeLeaves(full).some((t) => treeLeaves(given).includes(t))).toBe(false); // new tensors
  });
});

describe("withDeepSpeed: the config mapping", () => {
  const step: StepFn<null> = () => ({ loss: 0, grads: [] });
  it("derives and checks the batch sizes as DeepSpeed does", () => {
    const plan = (c: object, w = 1) => {
      const p = withDeepSpeed(step, c, w);
      return [p.microBatchSize, p.gradientAccumulationSteps, p.trainBatchSize];
    };
    expect(plan({ train_micro_batch_size_per_gpu: 8, gradient_accumulation_steps: 4 }, 2)).toEqual([8, 4, 64]);
    expect(plan({ train_batch_size: 64, train_micro_batch_size_per_gpu: 8 }, 2)).toEqual([8, 4, 64]);
    expect(plan({ train_batch_size: 64, gradient_accumulation_steps: 2 }, 4)).toEqual([8, 2, 64]);
    expect(plan({})).toEqual([undefined, 1, undefined]);
    expect(() => plan({ train_batch_size: 60, train_micro_batch_size_per_gpu: 8 }, 2)).toThrow(
      "plait: withDeepSpeed: train_batch_size 60 is not train_micro_batch_size_per_gpu × gradient_accumulation_steps × world size (8 × ? × 2)",
    );
    expect(() => plan({ gradient_accumulation_steps: 0 })).toThrow(
      "plait: withDeepSpeed: gradient_accumulation_steps must be a positive integer, got 0",
    );
  });

  it("refuses what it does not map, and contradictions", () => {
    expect(() => withDeepSpeed(step, { optimizer: { type: "Adam" } } as any)).toThrow(
      "plait: withDeepSpeed: config has keys plait does not map: optimizer (it maps train_batch_size, train_micro_batch_size_per_gpu, gradient_accumulation_steps, gradient_clipping, zero_optimization, fp16, bf16)",
    );
    expect(() => withDeepSpeed(step, { zero_optimization: { stage: 3, offload_param: {} } } as any)).toThrow(
      "plait: withDeepSpeed: zero_optimization has keys plait does not map: offload_param",
    );
    expect(() => withDeepSpeed(step, { zero_optimization: { stage: 4 as 3 } })).toThrow(
      "plait: withDeepSpeed: zero_optimization.stage must be 0, 1, 2 or 3, got 4",
    );
    expect(() => withDeepSpeed(step, { fp16: { enabled: true }, bf16: { enabled: true } })).toThrow(
      "plait: withDeepSpeed: fp16.enabled and bf16.enabled are both true; enable one",
    );
    expect(() => withDeepSpeed(step, { fp16: { enabled: true, loss_scale_window: 0 } })).toThrow(
      "plait: withDeepSpeed: fp16: loss scaler option lossScaleWindow must be a positive integer, got 0",
    );
    expect(() => withDeepSpeed(step, { gradient_clipping: -1 })).toThrow(
      "plait: withDeepSpeed: gradient_clipping must be a finite number ≥ 0, got -1",
    );
  });

  it("fp16 takes DeepSpeed's scaler (2^initial_scale_power) or a static loss_scale", async () => {
    const comm = localComm();
    const grads: StepFn<null> = (params, _b, ctx) => ({
      loss: 1,
      grads: treeMap((p) => tensor(new Float32Array(p.size).fill(ctx.lossScale), p.shape), params),
      gradScale: ctx.lossScale,
    });
    for (const [fp16, scale] of [
      [{ enabled: true }, 2 ** 16],
      [{ enabled: true, initial_scale_power: 8 }, 2 ** 8],
      [{ enabled: true, loss_scale: 128 }, 128],
    ] as const) {
      const plan = withDeepSpeed(grads, { fp16, gradient_clipping: 0 });
      const trainer = train(plan.step, sgd({ lr: 0.1 }), { comm });
      const { out, state } = await trainer(await trainer.init({ w: tensor([[1, 2]]) }), null);
      expect(out.metrics?.lossScale).toBe(scale);
      expect((state.transforms.amp as { kind: string }).kind).toBe(fp16.loss_scale ? "static" : "deepspeed");
    }
  });
});

describe("sharded checkpoints", () => {
  // Each rank saves its own TrainState (shards, optimizer moments, loss scaler, layout) with save();
  // a later run restores it with trainer.restore(template, load(folder)).
  const RESUME = new URL("./fixtures/sharded-resume.mjs", import.meta.url);
  for (const kind of [2, 3, "fsdp"] as const) {
    it(`${kind === "fsdp" ? "withFSDP" : `withZeRO stage ${kind}`}: a run resumed from per-rank checkpoints continues bit for bit`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "plait-sharded-"));
      try {
        type Half = { params: number[][]; opt: number[][]; transforms: Record<string, unknown> };
        const ranks = await spawn<{ straight: Half; resumed: Half }>(RESUME, "run", {
          devices: 2,
          args: { kind, dir },
          timeoutMs: 60_000,
        });
        for (const { straight, resumed } of ranks) {
          expect(resumed.params).toEqual(straight.params);
          expect(resumed.opt).toEqual(straight.opt);
          expect(resumed.transforms).toEqual(straight.transforms);
        }
        // the two ranks hold different optimizer shards, and the run did train
        expect(ranks[0].straight.opt).not.toEqual(ranks[1].straight.opt);
        expect(readdirSync(dir).sort()).toEqual(["rank-0", "rank-1"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("restore refuses a template with no tensors to lay out, and a checkpoint of another layout", async () => {
    const comm = localComm();
    const trainer = train(withZeRO((() => ({ loss: 0, grads: {} })) as StepFn<null>, { stage: 2 }), sgd({ lr: 0.1 }), {
      comm,
    });
    const state = await trainer.init({ w: tensor([1, 2, 3]) });
    await expect(trainer.restore({}, state)).rejects.toThrow("plait: withZeRO: the params have no tensors to shard");
    await expect(trainer.restore({ w: tensor([1, 2, 3, 4]) }, state)).rejects.toThrow(
      "plait: train.restore: loaded.params.shards[0] is f32[3], expected f32[4]",
    );
  });
});
