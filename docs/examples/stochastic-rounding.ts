// A user-written precision transform, built only from plait's public API: gradients are rounded
// to bfloat16 *stochastically* (up or down with probability proportional to the distance), so
// the rounding is unbiased on average. Its random state is explicit (under the key "sr" in the
// step's state), so a checkpointed run resumes with the same random stream.
// docs/custom-plugin.md walks through it; test/custom-plugin.test.ts runs it.
import { Rng, type RngState, type Step, stateOf, treeLeaves, withState } from "plait";

export function withStochasticRounding<B>(step: Step<B>, opts: { seed: number }): Step<B> {
  return async (params, batch, ctx) => {
    const out = await step(params, batch, ctx);
    if (out.skip || out.accumulating) return out; // nothing to round this time
    const saved = stateOf<RngState>(ctx, "sr");
    const rng = saved ? Rng.fromState(saved) : new Rng(opts.seed);
    for (const g of treeLeaves(out.grads)) {
      if (g.dtype !== "f32") throw new TypeError(`withStochasticRounding: expected f32 grads, got ${g.describe()}`);
      const bits = new Uint32Array(g.data().buffer, g.ptr, g.size);
      for (let i = 0; i < bits.length; i++) {
        // Adding a uniform random 16-bit value below the cut, then truncating, rounds up with
        // probability (dropped bits) / 2^16. Inf and NaN are left alone.
        if ((bits[i] & 0x7f800000) === 0x7f800000) continue;
        bits[i] = ((bits[i] + (rng.nextU32() & 0xffff)) & 0xffff0000) >>> 0;
      }
    }
    return withState(out, "sr", rng.state());
  };
}
