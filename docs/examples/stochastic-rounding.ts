// A user-written precision transform, built only from plait's public API: gradients are rounded
// to bfloat16 *stochastically* (up or down with probability proportional to the distance), so
// the rounding is unbiased on average. Its random state is explicit (under the key "sr" in the
// step's state, made by its init), so a checkpointed run resumes with the same random stream.
// docs/custom-plugin.md walks through it; test/custom-plugin.test.ts runs it.
import { Rng, type RngState, type Step, type StepLike, stateOf, transform, treeLeaves, withState } from "plait";

export function withStochasticRounding<B>(step: StepLike<B>, opts: { seed: number }): Step<B> {
  return transform(step, {
    name: "withStochasticRounding",
    key: "sr",
    initState: () => new Rng(opts.seed).state(),
    // only outputs that carry gradients reach update: skipped and accumulating ones pass through
    update(out, ctx) {
      const rng = Rng.fromState(stateOf<RngState>(ctx, "sr")!);
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
    },
  });
}
