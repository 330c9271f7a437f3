import { describe, expect, it } from "vitest";
import { withStochasticRounding } from "../docs/examples/stochastic-rounding.ts";
import { type Ctx, localComm, type Step, scope, type Tensor, tensor } from "../src/index.ts";

const ctx = (state: Record<string, unknown> = {}): Ctx => ({
  rank: 0,
  worldSize: 1,
  comm: localComm(),
  lossScale: 1,
  computeDType: "f32",
  state,
});

const value = 1 + 2 ** -10; // between the bf16 neighbours 1 and 1 + 2^-7, an eighth of the way up
const constantGrads: Step<null> = () => ({ loss: 0, grads: [tensor(new Float32Array(4096).fill(value))] });

describe("the custom-plugin example (docs/custom-plugin.md)", () => {
  it("rounds to bf16 neighbours, unbiased on average", () =>
    scope(async () => {
      const out = await withStochasticRounding(constantGrads, { seed: 1 })(null as never, null, ctx());
      const got = (out.grads as Tensor[])[0].toArray();
      const up = got.filter((x) => x === 1 + 2 ** -7).length;
      expect(got.every((x) => x === 1 || x === 1 + 2 ** -7)).toBe(true);
      // P(up) = 1/8: 512 expected of 4096; 5 standard deviations is ±106
      expect(Math.abs(up - 512)).toBeLessThan(106);
    }));

  it("keeps its random stream in the explicit state, so a resumed run repeats the bits", () =>
    scope(async () => {
      const step = withStochasticRounding(constantGrads, { seed: 7 });
      const first = await step(null as never, null, ctx());
      const second = await step(null as never, null, ctx({ ...first.state }));
      const resumed = await step(null as never, null, ctx(JSON.parse(JSON.stringify(first.state))));
      expect((resumed.grads as Tensor[])[0].toArray()).toEqual((second.grads as Tensor[])[0].toArray());
      expect((second.grads as Tensor[])[0].toArray()).not.toEqual((first.grads as Tensor[])[0].toArray());
    }));
});
