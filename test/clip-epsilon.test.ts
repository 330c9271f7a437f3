import { describe, expect, it } from "vitest";
import { mul, sgd, sum, type Tensor, type Tree, tensor, train, valueAndGrad, withGradClip } from "../src/index.ts";

// torch's clip_grad_norm_ divides by norm + 1e-6, not by the norm: with gradients this small the
// epsilon is most of the denominator, so these hand-computed cases pin it (a test that compares
// with toBeCloseTo on ordinary gradients cannot see it).

/** loss = Σ w·c, so the gradient is exactly c; sgd with lr 1 then makes w = −(clipped c). */
const loss = valueAndGrad((p: Tree, c: Tensor) => sum(mul((p as { w: Tensor }).w, c)));

async function clippedGrad(c: number[], maxNorm: number): Promise<{ grad: number[]; gradNorm?: number }> {
  const t = train(withGradClip(loss, { maxNorm }), sgd({ lr: 1 }));
  const state = await t.init({ w: tensor([0, 0], [2], { dtype: "f64" }) });
  const batch = tensor(c, [2], { dtype: "f64" });
  const { state: next, out } = await t(state, batch);
  const w = (next.params as { w: Tensor }).w.toArray();
  return { grad: w.map((x) => -x), gradNorm: out.metrics?.gradNorm };
}

function relClose(got: number[], want: number[]): void {
  expect(got.length).toBe(want.length);
  for (const [i, g] of got.entries()) expect(Math.abs(g - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 1e-12);
}

describe("withGradClip's epsilon (maxNorm / (norm + 1e-6))", () => {
  it("norm 5e-7 clipped to 1e-7: coefficient 1e-7 / 1.5e-6 = 1/15, not 1/5", async () => {
    const { grad, gradNorm } = await clippedGrad([3e-7, 4e-7], 1e-7);
    expect(gradNorm).toBeCloseTo(5e-7, 20);
    relClose(grad, [3e-7 / 15, 4e-7 / 15]); // without the epsilon: [6e-8, 8e-8]
  });

  it("a norm equal to maxNorm is still scaled, by maxNorm / (maxNorm + 1e-6) = 1/3 here", async () => {
    // Without the epsilon the coefficient would be exactly 1 and the gradient left alone.
    const { grad } = await clippedGrad([3e-7, 4e-7], 5e-7);
    relClose(grad, [1e-7, 4e-7 / 3]);
  });
});
