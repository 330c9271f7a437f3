import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import { Tensor, tensor } from "../src/core/tensor.ts";
import { liveWorkers } from "../src/launch/index.ts";
import { sgd } from "../src/optim/sgd.ts";
import { train } from "../src/step/train.ts";
import { bucketPlanner, planBuckets } from "../src/strategy/buckets.ts";
import { withDDP } from "../src/strategy/index.ts";
import { identical, maxDiff, runRanks as run } from "./strategy-run.ts";

// withDDP end to end: ranks are worker threads (spawn) running test/fixtures/strategy-train.mjs,
// which trains a small MNIST MLP through the transforms each test lists, each rank on its
// contiguous half of every global batch of 32. With devices 1 the same fixture is the
// single-device reference on the whole batch. Workers load plait from dist/:
// `npx tsc -p tsconfig.build.json` first.

/**
 * DDP and one device on the concatenated batch differ only in where the batch sum is split:
 * each rank sums 16 rows and the two halves are added, against one sum of 32 rows. After four
 * SGD steps on params of magnitude < 1, that leaves differences of a few f32 ulps; 1e-6 is
 * about 16 ulps at 1. A missing or wrong reduction (a sum instead of the mean, no broadcast)
 * moves params by more than 1e-3.
 */
const TOLERANCE = 1e-6;

describe("planBuckets (torch's compute_bucket_assignment_by_size)", () => {
  // leaves in registration order; sizes in bytes: 128, 100352, 40, 1280 (f32)
  const leaves = [[32], [784, 32], [10], [32, 10]].map((s) => new Tensor(s, "f32"));
  it("fills buckets in reverse order, closing each once it reaches its limit; the first limit is small", () => {
    expect(planBuckets(leaves, { firstBytes: 1000, capBytes: 50_000 })).toEqual([[3], [2, 1], [0]]);
    expect(planBuckets(leaves, { firstBytes: 2 ** 20, capBytes: 25 * 2 ** 20 })).toEqual([[3, 2, 1, 0]]);
    expect(planBuckets(leaves, { firstBytes: 1, capBytes: 1 })).toEqual([[3], [2], [1], [0]]);
    expect(planBuckets([], { firstBytes: 1, capBytes: 1 })).toEqual([]);
  });
  it("keeps one dtype per bucket, each dtype with its own small first bucket", () => {
    const mixed = [
      new Tensor([300], "f32"),
      new Tensor([300], "f64"),
      new Tensor([300], "f32"),
      new Tensor([10], "f64"),
    ];
    // f64: [3] (80 B) stays open, [1] joins it; f32: [2] (1200 B ≥ 1000) closes, [0] opens
    expect(planBuckets(mixed, { firstBytes: 1000, capBytes: 4000 })).toEqual([[2], [3, 1], [0]]);
  });
  it("bucketPlanner returns planBuckets' plan, reused while the dtypes and sizes stay, planned again when they change", () => {
    const limits = { firstBytes: 1000, capBytes: 50_000 };
    const plan = bucketPlanner(limits);
    const first = plan(leaves);
    expect(first).toEqual(planBuckets(leaves, limits));
    // new tensors of the same layout (each step's grads): the same plan, not planned again
    const again = [[32], [784, 32], [10], [32, 10]].map((s) => new Tensor(s, "f32"));
    expect(plan(again)).toBe(first);
    // another shape of the same size keeps the plan too: buckets depend on dtypes and bytes only
    expect(plan([[32], [32, 784], [10], [10, 32]].map((s) => new Tensor(s, "f32")))).toBe(first);
    // a size, a dtype or a count that changed: planned again, and equal to planBuckets' plan
    const changed = [[32], [784, 32], [10], [2, 10]].map((s) => new Tensor(s, "f32"));
    expect(plan(changed)).toEqual(planBuckets(changed, limits));
    expect(plan(changed)).not.toEqual(first);
    const f64 = [new Tensor([32], "f64"), ...leaves.slice(1)];
    expect(plan(f64)).toEqual(planBuckets(f64, limits));
    expect(plan(leaves.slice(1))).toEqual(planBuckets(leaves.slice(1), limits));
    for (const t of [...again, ...changed, f64[0]]) t.dispose();
  });
});

describe("withDDP: bad input", () => {
  const step = () => ({ loss: 0, grads: [tensor([1])] });
  it("checks its options", () => {
    expect(() => withDDP(step, null as any)).toThrow("plait: withDDP: options must be an object, got null");
    expect(() => withDDP(step, { bucketMb: 25 } as any)).toThrow(
      "plait: withDDP: unknown option bucketMb; known: bucketMB, firstBucketMB",
    );
    expect(() => withDDP(step, { bucketMB: 0 })).toThrow(
      "plait: withDDP: option bucketMB must be a finite number of MiB > 0, got 0",
    );
    expect(() => withDDP(step, { firstBucketMB: Number.NaN })).toThrow(
      "plait: withDDP: option firstBucketMB must be a finite number of MiB > 0, got NaN",
    );
  });
  it("refuses to nest inside another distributing strategy", async () => {
    const trainer = train(withDDP(withDDP(step)), sgd({ lr: 0.1 }), { comm: localComm() });
    await expect(trainer(await trainer.init([tensor([1])]), null)).rejects.toThrow(
      "plait: withDDP: nested inside withDDP; two strategies that both distribute do not compose (each would reduce the gradients): use one of them",
    );
  });
  it("names the rank and tensor whose shape differs from rank 0's, on every rank", async () => {
    await expect(run(2, { transforms: [["ddp", {}]], hiddenOnRank: [32, 16] })).rejects.toThrow(
      /rank [01] failed: Error: plait: withDDP: the params differ across ranks: rank 1's params\.layers\[0\]\.b is f32\[16\], rank 0's is f32\[32\]$/,
    );
    expect(liveWorkers()).toBe(0);
  });
});

describe("withDDP with 2 ranks", () => {
  it("equals one device on the concatenated batch, and every rank holds the same bits", async () => {
    const [ref] = await run(1, {});
    const ddp = await run(2, { transforms: [["ddp", {}]] });
    expect(identical(ddp[0].params, ddp[1].params)).toBe(true);
    expect(maxDiff(ddp[0].params, ref.params)).toBeLessThan(TOLERANCE);
    // one bucket per step (the MLP's 0.1 MB is under the first 1 MiB bucket): its 98 KiB weight
    // reduced in place, the three small leaves together; the setup: two allGathers (layout
    // check) and one broadcast (rank 0's params)
    expect(ddp[0].counts).toEqual({ allGather: 2, broadcast: 1, allReduce: 4 * 2 });
    // the test can fail: without withDDP the ranks drift apart and away from the reference
    const alone = await run(2, {});
    expect(maxDiff(alone[0].params, ref.params)).toBeGreaterThan(1e-3);
    expect(maxDiff(alone[0].params, alone[1].params)).toBeGreaterThan(1e-3);
  });

  it("bucket sizes change the number of collectives, never a bit", async () => {
    const one = await run(2, { transforms: [["ddp", {}]] });
    const three = await run(2, {
      transforms: [["ddp", { firstBucketMB: 1000 / 2 ** 20, bucketMB: 50_000 / 2 ** 20 }]],
    });
    // buckets [layers[1].w], [layers[1].b, layers[0].w (≥ 64 KiB: in place, alone)], [layers[0].b]
    expect(three[0].counts.allReduce).toBe(4 * 4);
    expect(identical(one[0].params, three[0].params)).toBe(true);
    expect(identical(three[0].params, three[1].params)).toBe(true);
  });

  for (const precision of ["16-mixed", "bf16-mixed"]) {
    it(`withDDP(withAMP(s)) and withAMP(withDDP(s)) give identical params (${precision})`, async () => {
      const inner = await run(2, {
        sameInit: true,
        transforms: [
          ["ddp", {}],
          ["amp", precision],
        ],
      });
      const outer = await run(2, {
        sameInit: true,
        transforms: [
          ["amp", precision],
          ["ddp", {}],
        ],
      });
      expect(identical(inner[0].params, outer[0].params)).toBe(true);
      expect(identical(inner[0].params, inner[1].params)).toBe(true);
      expect(identical(outer[0].params, outer[1].params)).toBe(true);
      const [ref] = await run(1, { transforms: [["amp", precision]] });
      expect(maxDiff(inner[0].params, ref.params)).toBeLessThan(precision === "16-mixed" ? 1e-4 : 1e-3);
    });
  }

  it("ranks started from different params train in sync in either order: withDDP's init broadcasts the masters", async () => {
    // withAMP's init hands the inner inits its f32 masters, so withDDP inside broadcasts those
    // (not the half copies each step makes from them): both orders start every rank from rank 0's.
    const outer = await run(2, {
      transforms: [
        ["amp", "bf16-mixed"],
        ["ddp", {}],
      ],
    });
    const inner = await run(2, {
      transforms: [
        ["ddp", {}],
        ["amp", "bf16-mixed"],
      ],
    });
    expect(identical(outer[0].params, outer[1].params)).toBe(true);
    expect(identical(inner[0].params, inner[1].params)).toBe(true);
    // (without the broadcast, the averaged gradients would move each rank's own params: they would stay apart)
    expect(identical(outer[0].params, inner[0].params)).toBe(true);
  });

  it("an overflow on one rank skips the step on every rank, in either order", async () => {
    const poison = { rank: 1, step: 1 };
    for (const transforms of [
      [
        ["ddp", {}],
        ["amp", "16-mixed"],
      ],
      [
        ["amp", "16-mixed"],
        ["ddp", {}],
      ],
    ]) {
      const ranks = await run(2, { sameInit: true, poison, transforms });
      for (const r of ranks) expect(r.outs.map((o) => o.skip)).toEqual([false, true, false, false]);
      expect(identical(ranks[0].params, ranks[1].params)).toBe(true);
    }
  });

  it("under withAccumulation it communicates once per window (no_sync)", async () => {
    const acc = await run(2, {
      steps: 8,
      globalBatch: 16,
      transforms: [
        ["ddp", {}],
        ["acc", 4],
      ],
    });
    for (const r of acc) {
      expect(r.counts.allReduce).toBe(2 * 2); // 2 windows × (the large weight + the small leaves)
      expect(r.outs.map((o) => o.accumulating)).toEqual([true, true, true, false, true, true, true, false]);
    }
    expect(identical(acc[0].params, acc[1].params)).toBe(true);
    const [ref] = await run(1, { steps: 8, globalBatch: 16, transforms: [["acc", 4]] });
    expect(maxDiff(acc[0].params, ref.params)).toBeLessThan(TOLERANCE);
  });
});
