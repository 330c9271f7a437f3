import { describe, expect, it } from "vitest";
import { full, ones, runtime, scope } from "../src/index.ts";

describe("kernel pool", () => {
  it("starts one thread per core by default and runs jobs on all of them over the shared memory", () =>
    scope(() => {
      const rt = runtime();
      expect(rt.pool.size).toBe(rt.threads);
      expect(rt.threads).toBeGreaterThanOrEqual(1);
      const n = 1000;
      const t = full([rt.pool.size * n], 0);
      // each thread fills its own range with its index + 1: every range written means every thread ran
      rt.pool.run(
        Array.from({ length: rt.pool.size }, (_, j) => ({ fn: "c.fill_f32", args: [t.ptr + j * n * 4, j + 1, n] })),
      );
      const v = t.toFloat32Array();
      for (let j = 0; j < rt.pool.size; j++) expect(v.slice(j * n, (j + 1) * n).every((x) => x === j + 1)).toBe(true);
    }));

  it("rejects unknown kernels and more jobs than threads", () => {
    const { pool } = runtime();
    const jobs = Array.from({ length: pool.size + 1 }, () => ({ fn: "c.fill_f32", args: [0, 0, 0] }));
    expect(() => pool.run(jobs)).toThrow(/jobs for a pool of/);
    if (pool.size > 1) {
      expect(() =>
        pool.run([
          { fn: "c.fill_f32", args: [0, 0, 0] },
          { fn: "c.nope", args: [] },
        ]),
      ).toThrow(/no kernel named c.nope/);
    }
  });
});

describe("full / ones", () => {
  // Reference: Float32Array.prototype.fill; sizes hit the SIMD body, the scalar tail and the threaded split.
  for (const n of [0, 1, 3, 4, 5, 17, 1023, 300_001]) {
    it(`fills ${n} f32 elements`, () =>
      scope(() => {
        const t = full([n], -2.5);
        const v = t.data();
        expect(v.length).toBe(n);
        expect(v.findIndex((x) => x !== -2.5)).toBe(-1);
      }));
  }

  it("fills every dtype, rounding into half precision", () =>
    scope(() => {
      expect(full([3], 1 / 3, { dtype: "f64" }).toArray()).toEqual([1 / 3, 1 / 3, 1 / 3]);
      expect(Array.from(full([2], 1 / 3, { dtype: "f16" }).data())).toEqual([0x3555, 0x3555]);
      expect(Array.from(full([2], 1 / 3, { dtype: "bf16" }).data())).toEqual([0x3eab, 0x3eab]);
      expect(ones([2], { dtype: "i32" }).toArray()).toEqual([1, 1]);
    }));
});
