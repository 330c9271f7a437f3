import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import { clamp } from "../src/core/clamp.ts";
import { scope, sgd, type Tensor, tensor, train } from "../src/index.ts";
import { withAccumulation } from "../src/step/accumulate.ts";
import { withGradClip } from "../src/step/clip.ts";
import type { Ctx, StepFn, StepOut } from "../src/step/contract.ts";

const ctx = (): Ctx => ({ rank: 0, worldSize: 1, comm: localComm(), lossScale: 1, computeDType: "f32", state: {} });

/** A step that returns fixed gradients (copies, multiplied by gradScale), standing in for backward. */
function fixedStep(values: number[][], gradScale = 1): StepFn<null> {
  return (): StepOut => ({
    loss: 1,
    grads: values.map((v) => tensor(v.map((x) => x * gradScale))),
    gradScale,
  });
}

const f64Norm = (values: number[][]) => Math.sqrt(values.flat().reduce((s, x) => s + Math.fround(x) ** 2, 0));
const values = [
  [3, -4, 0.5],
  [1.25, 7, -2, 0.1, 9, 11],
];

describe("withGradClip", () => {
  it("scales by maxNorm / (norm + 1e-6) when the global 2-norm is larger (torch's clip_grad_norm_)", () =>
    scope(async () => {
      const out = await withGradClip(fixedStep(values), { maxNorm: 5 }).run(null as never, null, ctx());
      const norm = f64Norm(values);
      expect(out.metrics?.gradNorm).toBeCloseTo(norm, 5);
      const coef = 5 / (norm + 1e-6);
      const got = (out.grads as Tensor[]).flatMap((t) => t.toArray());
      values.flat().forEach((v, i) => {
        expect(got[i]).toBeCloseTo(Math.fround(v) * coef, 6);
      });
    }));

  it("leaves gradients bit-identical when the norm is below maxNorm", () =>
    scope(async () => {
      const out = await withGradClip(fixedStep(values), { maxNorm: 1000 }).run(null as never, null, ctx());
      expect((out.grads as Tensor[]).flatMap((t) => t.toArray())).toEqual(values.flat().map(Math.fround));
    }));

  it("clips by the max-norm and by value", () =>
    scope(async () => {
      const inf = await withGradClip(fixedStep(values), { maxNorm: 5.5, normType: "inf" }).run(
        null as never,
        null,
        ctx(),
      );
      expect(inf.metrics?.gradNorm).toBe(11);
      expect((inf.grads as Tensor[])[1].toArray()[5]).toBeCloseTo((11 * 5.5) / (11 + 1e-6), 5);
      const byValue = await withGradClip(fixedStep(values), { value: 2 }).run(null as never, null, ctx());
      expect((byValue.grads as Tensor[]).flatMap((t) => t.toArray())).toEqual(
        values.flat().map((v) => Math.fround(Math.min(Math.max(v, -2), 2))),
      );
    }));

  it("measures and clips still-scaled gradients in true units, exactly", () =>
    scope(async () => {
      const s = 2 ** 12;
      const plain = await withGradClip(fixedStep(values), { maxNorm: 5 }).run(null as never, null, ctx());
      const scaled = await withGradClip(fixedStep(values, s), { maxNorm: 5 }).run(null as never, null, ctx());
      expect(scaled.metrics?.gradNorm).toBe(plain.metrics?.gradNorm);
      const a = (plain.grads as Tensor[]).flatMap((t) => t.toArray());
      const b = (scaled.grads as Tensor[]).flatMap((t) => t.toArray().map((x) => x / s));
      expect(b).toEqual(a);
    }));

  it("rejects contradicting or bad options, and clipping per micro-batch", async () => {
    expect(() => withGradClip(fixedStep(values), { maxNorm: 1, value: 1 } as never)).toThrow(/exactly one of/);
    expect(() => withGradClip(fixedStep(values), {} as never)).toThrow(/exactly one of/);
    expect(() => withGradClip(fixedStep(values), { maxNorm: 0 })).toThrow(/maxNorm must be a finite number > 0, got 0/);
    expect(() => withGradClip(fixedStep(values), { maxNorm: 1, normType: 1 as never })).toThrow(
      /normType must be 2 or "inf"/,
    );
    expect(() => withGradClip(fixedStep(values), { value: 1, normType: 2 } as never)).toThrow(/normType applies/);
    const inside = train(withAccumulation(withGradClip(fixedStep(values), { maxNorm: 1 }), 2), sgd({ lr: 1 }));
    await expect(
      scope(async () => {
        const state = await inside.init([tensor([0, 0, 0]), tensor([0, 0, 0, 0, 0, 0])]);
        return inside(state, null);
      }),
    ).rejects.toThrow(/inside withAccumulation would clip each micro-batch/);
    // inside a distributing strategy each rank holds its own, not yet combined, gradients
    const distributed = withGradClip(fixedStep(values), { maxNorm: 1 });
    await expect(
      scope(() => distributed.run(null as never, null, { ...ctx(), distributedBy: "withDDP" })),
    ).rejects.toThrow(
      "plait: withGradClip inside withDDP would clip each rank's own gradients before they are combined; wrap it outside: withGradClip(withDDP(step), ...)",
    );
  });
});

describe("clamp", () => {
  // Reference: min(max(x, lo), hi) in float64, NaN kept; sizes cover the SIMD body and the tail.
  for (const n of [0, 1, 3, 4, 5, 17, 1023]) {
    it(`clamps ${n} elements`, () =>
      scope(() => {
        const xs = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? Number.NaN : Math.sin(i * 1.7) * 10));
        const got = clamp(tensor(xs), -2.5, 4).toArray();
        xs.forEach((x, i) => {
          const want = Number.isNaN(x) ? Number.NaN : Math.fround(Math.min(Math.max(Math.fround(x), -2.5), 4));
          expect(got[i]).toBe(want);
        });
      }));
  }
  it("rejects lo > hi", () => scope(() => expect(() => clamp(tensor([1]), 2, 1)).toThrow(/expected lo ≤ hi/)));
});
