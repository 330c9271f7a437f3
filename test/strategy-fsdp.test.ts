import { describe, expect, it } from "vitest";
import { parentPath, withFSDP } from "../src/strategy/index.ts";
import { identical, maxDiff, runRanks } from "./strategy-run.ts";

// withFSDP with 2 ranks (test/fixtures/strategy-train.mjs in spawned worker threads, which load
// plait from dist/: `npx tsc -p tsconfig.build.json` first). The MLP has two units by default,
// params.layers[0] and params.layers[1].

const run = (args: Record<string, unknown>) => runRanks(2, { sameInit: true, ...args });

describe("parentPath (the default unit of a leaf)", () => {
  it("drops the last key or index", () => {
    expect(parentPath("params.layers[0].w")).toBe("params.layers[0]");
    expect(parentPath("params.layers[10]")).toBe("params.layers");
    expect(parentPath("params.w")).toBe("params");
    expect(parentPath("params")).toBe("params");
  });
});

describe("withFSDP: bad input", () => {
  const step = () => ({ loss: 0, grads: [] });
  it("checks its options", () => {
    expect(() => withFSDP(step, { paramDType: "f32" as "bf16" })).toThrow(
      'plait: withFSDP: option paramDType must be "bf16" or "f16", got "f32"',
    );
    expect(() => withFSDP(step, { sharding: "HYBRID_SHARD" as "FULL_SHARD" })).toThrow(
      'plait: withFSDP: option sharding must be "FULL_SHARD" or "SHARD_GRAD_OP", got "HYBRID_SHARD"',
    );
    expect(() => withFSDP(step, { paramDType: "bf16", scaler: { initScale: 8 } })).toThrow(
      'plait: withFSDP: option scaler needs paramDType "f16" (bf16 and f32 need no loss scaling), got paramDType "bf16"',
    );
    expect(() => withFSDP(step, { unitOf: "layers" as any })).toThrow(
      "plait: withFSDP: option unitOf must be a function from a leaf's path to its unit's name",
    );
  });
});

describe("withFSDP with 2 ranks", () => {
  it("gives DDP's params bit for bit, with one allGather and one reduceScatter per unit and step", async () => {
    const [ddp] = await run({ transforms: [["ddp", {}]] });
    const full = await run({ transforms: [["fsdp", {}]] });
    expect(identical(full[0].params, ddp.params)).toBe(true);
    expect(identical(full[1].params, ddp.params)).toBe(true);
    // setup: 2 allGathers (layout check) + 1 broadcast; 4 steps × 2 units; the final gather: 2 units
    expect(full[0].counts).toEqual({ allGather: 2 + 4 * 2 + 2, broadcast: 1, reduceScatter: 4 * 2 });
    // how the params are cut into units and how much is kept between steps changes no bit
    for (const opt of [{ oneUnit: true }, { sharding: "SHARD_GRAD_OP" }]) {
      const other = await run({ transforms: [["fsdp", opt]] });
      expect(identical(other[0].params, ddp.params)).toBe(true);
    }
  });

  for (const half of ["bf16", "f16"] as const) {
    it(`paramDType ${half}: gathers half params and reduces f32 grads, as DDP over true half with f32 masters`, async () => {
      const precision = {
        precision: half === "f16" ? "16-true" : "bf16-true",
        options: { masterWeights: true, ...(half === "f16" ? { scaler: {} } : {}) },
      };
      const [ddp] = await run({
        transforms: [
          ["ddp", {}],
          ["precision", precision],
        ],
      });
      const fsdp = await run({ transforms: [["fsdp", { paramDType: half }]] });
      expect(identical(fsdp[0].params, ddp.params)).toBe(true);
      expect(identical(fsdp[1].params, ddp.params)).toBe(true);
      // and it did compute in half: f32 FSDP ends elsewhere
      const [f32] = await run({ transforms: [["fsdp", {}]] });
      expect(maxDiff(fsdp[0].params, f32.params)).toBeGreaterThan(1e-5);
    });
  }

  it("f16: an overflow on one rank skips the step on every rank (global inf flag)", async () => {
    const ranks = await run({ poison: { rank: 1, step: 2 }, transforms: [["fsdp", { paramDType: "f16" }]] });
    for (const r of ranks) expect(r.outs.map((o) => o.skip)).toEqual([false, false, true, false]);
    expect(identical(ranks[0].params, ranks[1].params)).toBe(true);
  });

  it("withGradClip outside clips by the global norm over all units' shards", async () => {
    // the norm's sum of squares is added in another order (per shard, then over ranks): 1e-6 after 4 steps
    const [ddp] = await run({
      transforms: [
        ["clip", 0.5],
        ["ddp", {}],
      ],
    });
    const fsdp = await run({
      transforms: [
        ["clip", 0.5],
        ["fsdp", {}],
      ],
    });
    expect(maxDiff(fsdp[0].params, ddp.params)).toBeLessThan(1e-6);
    expect(identical(fsdp[0].params, fsdp[1].params)).toBe(true);
  });
});
