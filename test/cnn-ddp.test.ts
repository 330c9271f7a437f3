// batchNorm's buffers under withDDP (test/fixtures/bn-ddp-rank.mjs on 2 spawned ranks): the
// params stay identical across ranks, the running statistics are each rank's own (torch's
// BatchNorm without SyncBatchNorm), each equal to one forward pass over that rank's batch.
import { describe, expect, it } from "vitest";
import { Rng, scope, treeLeaves } from "../src/index.ts";
import { spawn } from "../src/launch/index.ts";
import { batchOf, model } from "./fixtures/bn-ddp-rank.mjs";
import { expectClose } from "./ops-gradcheck.ts";

interface RankResult {
  params: number[][];
  buffers: number[][];
}

describe("batchNorm under withDDP", () => {
  it("keeps per-rank running statistics from each rank's own batch, with identical params", async () => {
    const ranks = await spawn<RankResult>(new URL("./fixtures/bn-ddp-rank.mjs", import.meta.url), "run", {
      devices: 2,
      args: {},
      timeoutMs: 60_000,
    });
    expect(ranks[0].params).toEqual(ranks[1].params);
    expect(ranks[0].buffers).not.toEqual(ranks[1].buffers);
    // each rank's statistics: one training-mode forward over its batch from rank 0's initial params
    for (const [rank, r] of ranks.entries()) {
      scope(() => {
        const m = model();
        const buffers = m.buffers("f32");
        m.apply(m.init(new Rng(0)), batchOf(rank).x, { train: true, buffers });
        const want = treeLeaves(buffers).map((t) => t.toArray());
        for (const [i, leaf] of want.entries()) expectClose(r.buffers[i], leaf, () => 1e-5, `rank ${rank} buffer ${i}`);
      });
    }
  }, 120_000);
});
