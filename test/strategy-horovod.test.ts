import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import { scope } from "../src/core/scope.ts";
import { f16ToNumber, numberToF16, Tensor, tensor } from "../src/core/tensor.ts";
import { liveWorkers } from "../src/launch/index.ts";
import { sgd } from "../src/optim/sgd.ts";
import type { Ctx, StepFn } from "../src/step/contract.ts";
import { train } from "../src/step/train.ts";
import { planFusion } from "../src/strategy/horovod.ts";
import { withDDP, withHorovod } from "../src/strategy/index.ts";
import { identical, maxDiff, runRanks as run } from "./strategy-run.ts";

// withHorovod end to end over worker-thread ranks (test/fixtures/strategy-train.mjs: a small
// MNIST MLP, each rank on its contiguous slice of every global batch), checked against withDDP
// and withAccumulation runs of the same fixture and the single-device run on the whole batch.

/** As in strategy-ddp.test.ts: a few f32 ulps from splitting the batch sum; a wrong reduction moves params by > 1e-3. */
const TOLERANCE = 1e-6;
/**
 * fp16 compression rounds each rank's gradient to f16 and the average back to f16: a relative
 * error below 2^-11 per element and step. Through four SGD steps (lr 0.1, momentum 0.9: the
 * last step moves a param by 0.1·(1 + 0.9 + 0.81 + 0.729)·g) that bounds the params' drift by
 * about 0.1·9.05·2^-11·max|g| ≈ 4.4e-4·max|g|, with max|g| < 1 on this model; a compression that
 * sent garbage or half the values would move them by far more.
 */
const F16_TOLERANCE = 5e-4;

const ctx1 = (gradScale?: number): Ctx => ({
  rank: 0,
  worldSize: 1,
  comm: localComm(),
  lossScale: gradScale ?? 1,
  computeDType: "f32",
  state: {},
});

/** Runs `step` under withHorovod on a world of one and returns its grads' values. */
async function gradsOf(step: StepFn<null>, opts: Parameters<typeof withHorovod>[1]): Promise<number[][]> {
  const s = withHorovod(step, opts);
  const out = await s.run([], null, ctx1());
  return (out.grads as Tensor[]).map((g) => g.toArray());
}

describe("withHorovod: bad input", () => {
  const step = () => ({ loss: 0, grads: [tensor([1])] });
  it("refuses unknown options and bad values, naming the option, expected and actual", () => {
    expect(() => withHorovod(step, { fusionMb: 64 } as never)).toThrow(
      "plait: withHorovod: unknown option fusionMb; known: fusionMB, backwardPassesPerStep, compression, scaleLR",
    );
    expect(() => withHorovod(step, { fusionMB: -1 })).toThrow(
      "plait: withHorovod: option fusionMB must be a finite number of MiB ≥ 0 (0: no fusion), got -1",
    );
    expect(() => withHorovod(step, { fusionMB: "64" as never })).toThrow(/option fusionMB .* got "64"$/);
    expect(() => withHorovod(step, { fusionMB: Number.POSITIVE_INFINITY })).toThrow(/got Infinity$/);
    expect(() => withHorovod(step, { backwardPassesPerStep: 0 })).toThrow(
      "plait: withHorovod: option backwardPassesPerStep must be a positive integer, got 0",
    );
    expect(() => withHorovod(step, { backwardPassesPerStep: 1.5 })).toThrow(/positive integer, got 1.5$/);
    expect(() => withHorovod(step, { compression: "bf16" as never })).toThrow(
      'plait: withHorovod: option compression must be "none" or "fp16", got "bf16"',
    );
    expect(() => withHorovod(step, { scaleLR: 1 as never })).toThrow(
      "plait: withHorovod: option scaleLR must be a boolean, got 1",
    );
    expect(() => withHorovod({} as never)).toThrow(/plait: withHorovod: argument step is an object without init/);
  });

  it("refuses scaleLR: true, saying where to scale the learning rate instead; false is accepted", () => {
    expect(() => withHorovod(step, { scaleLR: true })).toThrow(
      /plait: withHorovod: option scaleLR: true cannot be honoured here: .*sgd\(\{ lr: 0\.1 \* comm\.worldSize \}\)/,
    );
    expect(withHorovod(step, { scaleLR: false }).name).toBe("withHorovod(step)");
  });

  it("refuses to nest with another distributing strategy, either way round", async () => {
    for (const s of [withDDP(withHorovod(step)), withHorovod(withDDP(step))]) {
      const trainer = train(s, sgd({ lr: 0.1 }), { comm: localComm() });
      await expect(trainer(await trainer.init([tensor([1])]), null)).rejects.toThrow(
        /plait: with(DDP|Horovod): nested inside with(Horovod|DDP); two strategies that both distribute do not compose/,
      );
    }
  });

  it("names the rank and tensor whose shape differs from rank 0's", async () => {
    await expect(run(2, { transforms: [["horovod", {}]], hiddenOnRank: [32, 16] })).rejects.toThrow(
      /plait: withHorovod: the params differ across ranks: rank 1's params\.layers\[0\]\.b is f32\[16\], rank 0's is f32\[32\]$/,
    );
    expect(liveWorkers()).toBe(0);
  });
});

describe("planFusion (Horovod's tensor fusion)", () => {
  // leaves in registration order; f32 bytes: 128, 100352, 40, 1280
  const leaves = [[32], [784, 32], [10], [32, 10]].map((s) => new Tensor(s, "f32"));
  it("packs leaves in reverse order up to the threshold; a larger leaf goes alone; 0 fuses nothing", () => {
    expect(planFusion(leaves, 64 * 2 ** 20)).toEqual([[3, 2, 1, 0]]);
    expect(planFusion(leaves, 50_000)).toEqual([[3, 2], [1], [0]]);
    expect(planFusion(leaves, 1320)).toEqual([[3, 2], [1], [0]]);
    expect(planFusion(leaves, 1319)).toEqual([[3], [2], [1], [0]]);
    expect(planFusion(leaves, 0)).toEqual([[3], [2], [1], [0]]);
    expect(planFusion([], 0)).toEqual([]);
  });
  it("keeps one dtype per buffer and counts bytes as sent", () => {
    const mixed = [new Tensor([300], "f32"), new Tensor([300], "f64"), new Tensor([300], "f32")];
    expect(planFusion(mixed, 2400)).toEqual([[2, 0], [1]]);
    expect(planFusion(mixed, 1200)).toEqual([[2], [0], [1]]);
    // under fp16 compression an f32 leaf of 300 takes 600 bytes on the wire
    expect(planFusion(mixed, 1200, (d) => (d === "f32" ? "f16" : d))).toEqual([[2, 0], [1]]);
  });
});

describe("withHorovod: compression fp16 on one rank", () => {
  it("rounds f32 gradients to f16 and back, exactly (round to nearest even, subnormals kept)", () =>
    scope(async () => {
      const a = [1 / 3, 1e-6, -2.5e-8, 65504, 0.1];
      const b = [Math.PI, -7.77e-5];
      const got = await gradsOf(() => ({ loss: 0, grads: [tensor(a), tensor(b)] }), { compression: "fp16" });
      const f16 = (v: number) => f16ToNumber(numberToF16(v));
      expect(got).toEqual([a.map(f16), b.map(f16)]);
      expect(got[0][0]).not.toBe(Math.fround(1 / 3)); // the round trip did happen
      // without compression a world of one changes nothing
      expect(await gradsOf(() => ({ loss: 0, grads: [tensor(a)] }), {})).toEqual([a.map(Math.fround)]);
    }));

  it("throws on a gradient beyond f16's range when no loss scaler can skip the step", () =>
    scope(async () => {
      const big = () => ({ loss: 0, grads: [tensor([1, 70_000])] });
      await expect(gradsOf(big, { compression: "fp16" })).rejects.toThrow(
        /plait: withHorovod: the gradients are not finite after the f16 exchange \(compression "fp16"\): a gradient of magnitude ≥ 65520 \(f16's largest value is 65504\) became inf/,
      );
      // still-scaled grads (a loss scaler outside): the inf is passed on for the scaler's skip
      const s = withHorovod(() => ({ loss: 0, grads: [tensor([1, 70_000])], gradScale: 2 }), { compression: "fp16" });
      const out = await s.run([], null, ctx1(2));
      expect((out.grads as Tensor[])[0].toArray()).toEqual([1, Number.POSITIVE_INFINITY]);
    }));

  it("refuses f64 gradients (f64 → f16 would round twice), naming the leaf", () =>
    scope(async () => {
      const f64 = () => ({ loss: 0, grads: { w: tensor([1], undefined, { dtype: "f64" }) } });
      await expect(gradsOf(f64, { compression: "fp16" })).rejects.toThrow(
        'plait: withHorovod: compression "fp16" takes f32 (or f16/bf16) gradients, got grads.w as f64[1]',
      );
    }));
});

describe("withHorovod over worker-thread ranks", () => {
  it("equals withDDP bit for bit, and one device within a few ulps", async () => {
    const [ref] = await run(1, {});
    const ddp = await run(2, { transforms: [["ddp", {}]] });
    const hvd = await run(2, { transforms: [["horovod", {}]] });
    expect(identical(hvd[0].params, hvd[1].params)).toBe(true);
    expect(identical(hvd[0].params, ddp[0].params)).toBe(true);
    expect(maxDiff(hvd[0].params, ref.params)).toBeLessThan(TOLERANCE);
    // setup: the layout check (two allGathers) and rank 0's params (one broadcast: ranks start
    // from different seeds, so without it they would end apart); then one allreduce per step,
    // the MLP's 0.1 MB being one fusion buffer under the default 64 MiB
    expect(hvd[0].counts).toEqual({ allGather: 2, broadcast: 1, allReduce: 4 * 1 });
  });

  it("the fusion threshold changes the number of allreduces, never a bit", async () => {
    const ddp = await run(2, { transforms: [["ddp", {}]] });
    // buffers [layers[1].w, layers[1].b], [layers[0].w] (over the threshold: alone), [layers[0].b]
    const split = await run(2, { transforms: [["horovod", { fusionMB: 50_000 / 2 ** 20 }]] });
    const none = await run(2, { transforms: [["horovod", { fusionMB: 0 }]] });
    expect(split[0].counts.allReduce).toBe(4 * 3);
    expect(none[0].counts.allReduce).toBe(4 * 4);
    for (const h of [split, none]) {
      expect(identical(h[0].params, h[1].params)).toBe(true);
      expect(identical(h[0].params, ddp[0].params)).toBe(true);
    }
  });

  it("composes with withAMP in either order, bit for bit", async () => {
    const outer = await run(2, {
      transforms: [
        ["amp", "16-mixed"],
        ["horovod", {}],
      ],
    });
    const inner = await run(2, {
      transforms: [
        ["horovod", {}],
        ["amp", "16-mixed"],
      ],
    });
    expect(identical(outer[0].params, outer[1].params)).toBe(true);
    expect(identical(outer[0].params, inner[0].params)).toBe(true);
  });

  it("averages over 3 ranks like withDDP", async () => {
    const [ref] = await run(1, { globalBatch: 30 });
    const ddp = await run(3, { globalBatch: 30, transforms: [["ddp", {}]] });
    const hvd = await run(3, { globalBatch: 30, transforms: [["horovod", { fusionMB: 0.001 }]] });
    for (const r of hvd) expect(identical(r.params, ddp[0].params)).toBe(true);
    expect(maxDiff(hvd[0].params, ref.params)).toBeLessThan(TOLERANCE);
  });

  it("backwardPassesPerStep accumulates locally and reduces once per window, as withDDP(withAccumulation(s, N))", async () => {
    const args = { steps: 8, globalBatch: 16 };
    const hvd = await run(2, { ...args, transforms: [["horovod", { backwardPassesPerStep: 4 }]] });
    for (const r of hvd) {
      expect(r.counts.allReduce).toBe(2); // 2 windows × 1 fusion buffer
      expect(r.outs.map((o) => o.accumulating)).toEqual([true, true, true, false, true, true, true, false]);
    }
    const ddp = await run(2, {
      ...args,
      transforms: [
        ["ddp", {}],
        ["acc", 4],
      ],
    });
    expect(identical(hvd[0].params, hvd[1].params)).toBe(true);
    expect(identical(hvd[0].params, ddp[0].params)).toBe(true);
    expect(hvd[0].outs).toEqual(ddp[0].outs);
    // the same update as accumulating outside a per-batch reduction, and as one device
    const outside = await run(2, {
      ...args,
      transforms: [
        ["acc", 4],
        ["ddp", {}],
      ],
    });
    expect(maxDiff(hvd[0].params, outside[0].params)).toBeLessThan(TOLERANCE);
    const [ref] = await run(1, { ...args, transforms: [["acc", 4]] });
    expect(maxDiff(hvd[0].params, ref.params)).toBeLessThan(TOLERANCE);
  });

  it("with backwardPassesPerStep, a loss scaler goes outside: withAMP(withHorovod(s)) = withAMP(withDDP(withAccumulation(s)))", async () => {
    const args = { steps: 4, globalBatch: 16 };
    const hvd = await run(2, {
      ...args,
      transforms: [
        ["amp", "16-mixed"],
        ["horovod", { backwardPassesPerStep: 2 }],
      ],
    });
    const ddp = await run(2, {
      ...args,
      transforms: [
        ["amp", "16-mixed"],
        ["ddp", {}],
        ["acc", 2],
      ],
    });
    expect(identical(hvd[0].params, ddp[0].params)).toBe(true);
    expect(hvd[0].outs).toEqual(ddp[0].outs);
  });

  it("compression fp16 stays within f16 rounding of the uncompressed run", async () => {
    const plain = await run(2, { transforms: [["horovod", {}]] });
    const fp16 = await run(2, { transforms: [["horovod", { compression: "fp16" }]] });
    expect(identical(fp16[0].params, fp16[1].params)).toBe(true);
    const d = maxDiff(fp16[0].params, plain[0].params);
    expect(d).toBeGreaterThan(0); // the wire rounding happened
    expect(d).toBeLessThan(F16_TOLERANCE);
  });

  it("an f16 overflow on one rank is an error on every rank without a loss scaler, a skipped step with one", async () => {
    const poison = { rank: 1, step: 1, value: 1e5 };
    await expect(run(2, { poison, transforms: [["horovod", { compression: "fp16" }]] })).rejects.toThrow(
      /rank [01] failed: Error: plait: withHorovod: the gradients are not finite after the f16 exchange/,
    );
    expect(liveWorkers()).toBe(0);
    // the same gradient is fine on an f32 wire
    const f32 = await run(2, { poison, transforms: [["horovod", {}]] });
    expect(f32[0].outs.map((o) => o.skip)).toEqual([false, false, false, false]);
    // withAMP outside: the scaler sees the inf, every rank skips that step (and backs off)
    const amp = await run(2, {
      sameInit: true,
      poison,
      transforms: [
        ["amp", "16-mixed"],
        ["horovod", { compression: "fp16" }],
      ],
    });
    for (const r of amp) expect(r.outs.map((o) => o.skip)).toEqual([false, true, false, false]);
    expect(identical(amp[0].params, amp[1].params)).toBe(true);
  });
});
