import { describe, expect, it } from "vitest";
import { runtime } from "../src/core/runtime.ts";

// Each vitest project says which kernel build it tests (vitest.config.ts sets PLAIT_SIMD): this
// checks that the build it names is the one that runs, so the relaxed project cannot quietly
// test the plain SIMD build (or the other way round).
describe("kernel build under test", () => {
  it("is the one PLAIT_SIMD names", () => {
    const want = process.env.PLAIT_SIMD;
    expect(want === "simd" || want === "relaxed", `PLAIT_SIMD is ${want}`).toBe(true);
    expect(runtime().variant).toBe(want);
  });
});
