// DESIGN invariant 1 for the precision transforms: every sensible nesting trains to the same
// parameters, bit for bit (the loss scale is a power of two, so scaling commutes with rounding).
import { describe, expect, it } from "vitest";
import { withAMP } from "../src/precision/amp.ts";
import { withAccumulation } from "../src/step/accumulate.ts";
import { withGradClip } from "../src/step/clip.ts";
import type { StepLike } from "../src/step/contract.ts";
import { type Batch, batchOrder, bytesOf, mnistModel, trainMlp } from "./precision-helpers.ts";

const model = mnistModel(32);
const order = batchOrder(1).slice(0, 12);
const clip = { maxNorm: 0.5 }; // small enough that most steps clip

async function paramsAfter(wrap: (s: StepLike<Batch>) => StepLike<Batch>) {
  const { state, outs } = await trainMlp(model, wrap, order);
  return { bytes: bytesOf(state.params), outs };
}

describe("order invariance of precision transforms", () => {
  it("withGradClip(withAMP(s)) and withAMP(withGradClip(s)) give identical params and norms (16-mixed)", async () => {
    const amp = { precision: "16-mixed" as const };
    const a = await paramsAfter((s) => withGradClip(withAMP(s, amp), clip));
    const b = await paramsAfter((s) => withAMP(withGradClip(s, clip), amp));
    expect(b.bytes).toEqual(a.bytes);
    expect(b.outs.map((o) => o.metrics?.gradNorm)).toEqual(a.outs.map((o) => o.metrics?.gradNorm));
    expect(a.outs.some((o) => (o.metrics?.gradNorm ?? 0) > clip.maxNorm)).toBe(true);
  });

  it("with accumulation: AMP outside or inside the clip, both outside the window, agree", async () => {
    const amp = { precision: "bf16-mixed" as const };
    const a = await paramsAfter((s) => withGradClip(withAMP(withAccumulation(s, 3), amp), clip));
    const b = await paramsAfter((s) => withAMP(withGradClip(withAccumulation(s, 3), clip), amp));
    expect(b.bytes).toEqual(a.bytes);
    expect(a.outs.filter((o) => !o.accumulating).length).toBe(order.length / 3);
  });
});
