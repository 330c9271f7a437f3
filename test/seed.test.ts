import fc from "fast-check";
import { describe, expect, it } from "vitest";

// test/setup/seed.ts fixes the seed of every random test input: fast-check's and Math.random's.
describe("random test inputs", () => {
  const seed = Number(process.env.PLAIT_TEST_SEED || 0x5eed);

  it("fast-check runs from the fixed seed", () => {
    expect(fc.readConfigureGlobal().seed).toBe(seed);
    const draw = () => fc.sample(fc.integer(), { numRuns: 3 });
    expect(draw()).toEqual(draw()); // same seed, same values
  });

  it("Math.random is the seeded generator, not the engine's", () => {
    expect(Math.random.toString()).not.toContain("[native code]");
    for (let i = 0; i < 100; i++) {
      const x = Math.random();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
