import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import type { Comm } from "../src/comm/types.ts";
import { tensor } from "../src/core/tensor.ts";
import { sgd } from "../src/optim/sgd.ts";
import type { Ctx, StepFn } from "../src/step/contract.ts";
import { train } from "../src/step/train.ts";
import { withDDP, withDP } from "../src/strategy/index.ts";
import { identical, maxDiff, runRanks as run } from "./strategy-run.ts";

// withDP with 2 ranks (test/fixtures/strategy-train.mjs in spawned worker threads, which load
// plait from dist/: `npx tsc -p tsconfig.build.json` first): rank 0 trains on whole global
// batches, rank 1 serves its steps.

/** As in test/strategy-ddp.test.ts: only where the batch sum is split differs; ~16 ulps at 1. */
const TOLERANCE = 1e-6;

describe("withDP with 2 ranks", () => {
  it("with equal slices, gives DDP's params bit for bit, and reports the whole batch's loss", async () => {
    const [ddp] = await run(2, { transforms: [["ddp", {}]] });
    const [main, helper] = await run(2, { transforms: [["dp"]] });
    expect(identical(main.params, ddp.params)).toBe(true);
    // per step: the header (2 broadcasts), params (1), batch (1); the gradient bucket (its large
    // weight in place, the small leaves together) and the loss; then stop() (2)
    expect(main.counts).toEqual({ broadcast: 4 * 4 + 2, allReduce: 4 * 3 });
    expect(helper.counts).toEqual(main.counts);
    const [ref] = await run(1, {});
    for (const [i, o] of main.outs.entries()) expect(Math.abs(o.loss - ref.outs[i].loss)).toBeLessThan(1e-6);
  });

  // An unweighted average of the 17- and 16-row slices' means would be off by (g0 − g1)·(17/33 − 1/2),
  // about 1.5% of the difference between the slices' gradients: far outside the tolerance.
  it("splits an uneven batch by rows and weights each slice's mean: one device's step on the batch", async () => {
    const [ref] = await run(1, { globalBatch: 33 });
    const [main] = await run(2, { globalBatch: 33, transforms: [["dp"]] });
    expect(maxDiff(main.params, ref.params)).toBeLessThan(TOLERANCE);
    for (const [i, o] of main.outs.entries()) expect(Math.abs(o.loss - ref.outs[i].loss)).toBeLessThan(1e-6);
  });

  it("inner transforms run on every rank and decide together (withAMP's skip)", async () => {
    const [main] = await run(2, { poison: { rank: 1, step: 1 }, transforms: [["dp"], ["amp", "16-mixed"]] });
    expect(main.outs.map((o) => o.skip)).toEqual([false, true, false, false]);
  });
});

describe("withDP: bad input", () => {
  const step: StepFn<unknown> = () => ({ loss: 0, grads: [] });
  const fake = (rank: number): Comm => ({ ...localComm(), rank, worldSize: 2 }) as Comm;
  const ctx = (rank: number): Ctx => ({
    rank,
    worldSize: 2,
    comm: fake(rank),
    lossScale: 1,
    computeDType: "f32",
    state: {},
  });

  it("runs the step on rank 0, serve() elsewhere, stop() on rank 0", async () => {
    const dp = withDP(step);
    await expect(dp.run([], { x: tensor([1, 2]) }, ctx(1))).rejects.toThrow(
      "plait: withDP: the step runs on rank 0 only (one logical replica); rank 1 calls trainer.serve(state) instead",
    );
    await expect(dp.serve!(ctx(0))).rejects.toThrow(
      "plait: withDP: serve() is for the ranks other than 0; rank 0 trains",
    );
    await expect(dp.stop!(ctx(1))).rejects.toThrow(
      "plait: withDP: stop() is for rank 0, which ends the others' serve()",
    );
  });

  it("splits every batch tensor along a first dimension they share", async () => {
    const dp = withDP(step);
    await expect(dp.run([], { x: tensor([[1], [2]]), y: tensor([1, 2, 3]) }, ctx(0))).rejects.toThrow(
      "plait: withDP: batch tensor 1 is f32[3], expected 2 rows like batch tensor 0: every tensor in the batch is split along its first dimension",
    );
    await expect(dp.run([], { x: tensor([1]) }, ctx(0))).rejects.toThrow(
      "plait: withDP: the batch has 1 rows, fewer than the 2 ranks that split it",
    );
    await expect(dp.run([], { n: 3 }, ctx(0))).rejects.toThrow(
      "plait: withDP: the batch holds no tensors to split across ranks",
    );
  });

  it("a trainer without withDP has no serve or stop", async () => {
    const trainer = train(withDDP(step), sgd({ lr: 0.1 }));
    const state = await trainer.init({ w: tensor([1]) });
    await expect(trainer.serve(state)).rejects.toThrow(
      "plait: train: serve(): withDDP(step) has no serving ranks (only withDP's ranks other than 0 serve)",
    );
    await expect(trainer.stop(state)).rejects.toThrow(
      "plait: train: stop(): withDDP(step) has no serving ranks to stop (only withDP has)",
    );
  });

  it("refuses to nest with another distributing strategy", async () => {
    await expect(withDP(withDDP(step)).run([], null, { ...ctx(0), worldSize: 1 })).rejects.toThrow(
      "plait: withDDP: nested inside withDP; two strategies that both distribute do not compose",
    );
  });
});
