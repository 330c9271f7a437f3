// configure({ deterministic }) / PLAIT_DETERMINISTIC: its errors, what it switches, and the
// portable math it uses. The cross-runtime, cross-thread-count bit comparison is in
// test/compat/deterministic.mjs (npm run test:compat). The tests run in order: the first ones
// before this process's runtime starts, the rest after (it starts deterministic).
import { afterEach, describe, expect, it, vi } from "vitest";
import { blasFor, blasStatus } from "../ffi/blas.ts";
import { chooseVariant } from "../src/core/kernels.ts";
import { PARALLEL_MIN_ELEMENTS } from "../src/core/parallel.ts";
import * as portable from "../src/core/portableMath.ts";
import { powInt } from "../src/core/portableMath.ts";
import * as core from "../src/core/reduce.ts";
import { configure, deterministic, runtime, runtimeStarted } from "../src/core/runtime.ts";
import { tensor } from "../src/core/tensor.ts";
import { logSumExp } from "../src/ops/reduceAxis.ts";
import { exp, log } from "../src/ops/unary.ts";

afterEach(() => {
  vi.unstubAllEnvs();
});

/** Distance in units of the last place of `want` (the spacing of doubles at want's magnitude). */
function ulps(got: number, want: number): number {
  const a = Math.abs(want);
  const ulp = a < 2 ** -1022 ? 2 ** -1074 : 2 ** (Math.floor(Math.log2(a)) - 52);
  return Math.abs(got - want) / ulp;
}

describe("deterministic mode, before the runtime starts", () => {
  it("is off by default and reads PLAIT_DETERMINISTIC", () => {
    expect(runtimeStarted()).toBe(false);
    vi.stubEnv("PLAIT_DETERMINISTIC", "");
    expect(deterministic()).toBe(false);
    for (const on of ["1", "true", "ON"]) {
      vi.stubEnv("PLAIT_DETERMINISTIC", on);
      expect(deterministic()).toBe(true);
    }
    vi.stubEnv("PLAIT_DETERMINISTIC", "0");
    expect(deterministic()).toBe(false);
  });

  it("rejects a value that is not a boolean, naming the argument and the value", () => {
    expect(() => configure({ deterministic: "yes" as any })).toThrow(
      'plait: configure({ deterministic }) must be true or false, got "yes"',
    );
    vi.stubEnv("PLAIT_DETERMINISTIC", "maybe");
    expect(() => deterministic()).toThrow(
      'plait: PLAIT_DETERMINISTIC must be 1, true, on, 0, false or off, got "maybe"',
    );
  });

  it("refuses a system BLAS with it, naming both settings", () => {
    expect(() => configure({ deterministic: true, blas: "on" })).toThrow(
      'plait: configure({ deterministic: true }) conflicts with configure({ blas: "on" }): deterministic results need the WASM GEMM',
    );
    vi.stubEnv("PLAIT_BLAS", "/usr/lib/libopenblas.so.0");
    expect(() => configure({ deterministic: true })).toThrow(
      "plait: configure({ deterministic: true }) conflicts with PLAIT_BLAS=/usr/lib/libopenblas.so.0",
    );
    vi.stubEnv("PLAIT_BLAS", "");
    vi.stubEnv("PLAIT_DETERMINISTIC", "1");
    expect(() => configure({ blas: "libopenblas.so.0" })).toThrow(
      'plait: deterministic mode (PLAIT_DETERMINISTIC or configure) conflicts with configure({ blas: "libopenblas.so.0" })',
    );
    // nothing was kept from the refused calls
    vi.stubEnv("PLAIT_DETERMINISTIC", "");
    expect(deterministic()).toBe(false);
  });

  it("refuses PLAIT_SIMD=relaxed with it, naming both settings; takes the plain build otherwise", () => {
    expect(() => chooseVariant("relaxed", true)).toThrow(
      "plait: PLAIT_SIMD=relaxed conflicts with deterministic mode (configure({ deterministic: true }) or PLAIT_DETERMINISTIC)",
    );
    expect(() => chooseVariant("fast", true)).toThrow('PLAIT_SIMD must be "simd" or "relaxed", got "fast"');
    expect(chooseVariant(undefined, true)).toBe("simd");
    expect(chooseVariant("", true)).toBe("simd");
    expect(chooseVariant("simd", true)).toBe("simd");
  });

  it("starts the runtime on the plain build with no BLAS (blas auto and off are fine)", () => {
    configure({ deterministic: true, blas: "auto" });
    configure({ blas: "off" });
    configure({ blas: "auto" });
    const t = tensor([1, 2], [2]);
    t.dispose();
    const rt = runtime();
    expect(rt.deterministic).toBe(true);
    expect(rt.variant).toBe("simd");
    expect(blasFor("f32")).toBeUndefined();
    expect(blasFor("f64")).toBeUndefined();
    const status = blasStatus();
    expect(status.inUse).toBe(false);
    expect(status.reason).toMatch(
      /^deterministic mode is on \(configure\(\{ deterministic \}\) \/ PLAIT_DETERMINISTIC\): no system BLAS$/,
    );
  });
});

describe("deterministic mode, after the runtime started", () => {
  it("cannot be switched off late, and says why; setting it again is a no-op", () => {
    expect(() => configure({ deterministic: false })).toThrow(
      "plait: configure({ deterministic: false }) must be called before the first tensor or kernel call: the runtime already started with deterministic true (the simd kernel build)",
    );
    expect(() => configure({ deterministic: true })).not.toThrow();
    expect(deterministic()).toBe(true);
    vi.stubEnv("PLAIT_DETERMINISTIC", "0"); // the running runtime's setting wins over a later env change
    expect(deterministic()).toBe(true);
  });

  it("still refuses a BLAS library set later (blas may change at run time)", () => {
    expect(() => configure({ blas: "/opt/lib/libopenblas.so" })).toThrow(
      'conflicts with configure({ blas: "/opt/lib/libopenblas.so" })',
    );
    expect(blasFor("f32")).toBeUndefined();
  });

  it("sums in fixed chunks whatever the pool size: the total is the chunk sums combined in order", () => {
    const n = 5 * PARALLEL_MIN_ELEMENTS + 1234;
    const values = new Float32Array(n);
    let s = 1;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      values[i] = (s / 2 ** 32 - 0.5) * 2 ** ((i % 23) - 11);
    }
    const chunkSums: number[] = [];
    for (let start = 0; start < n; start += PARALLEL_MIN_ELEMENTS) {
      const c = tensor(values.subarray(start, Math.min(n, start + PARALLEL_MIN_ELEMENTS)), [
        Math.min(PARALLEL_MIN_ELEMENTS, n - start),
      ]);
      chunkSums.push(core.sum(c));
      c.dispose();
    }
    let total = 0;
    let comp = 0;
    for (const p of chunkSums) {
      const t = total + p;
      comp += Math.abs(total) >= Math.abs(p) ? total - t + p : p - t + total;
      total = t;
    }
    const x = tensor(values, [n]);
    expect(core.sum(x)).toBe(total + comp);
    x.dispose();
  });

  it("runs the f64 exp and log through the portable math", () => {
    const xs = [-700.5, -20.25, -1e-9, 0, 0.3, 1, 12.5, 700];
    const x = tensor(xs, [xs.length], { dtype: "f64" });
    expect(exp(x).toArray()).toEqual(xs.map(portable.exp));
    const y = tensor([1e-300, 0.5, 1, 2, 1e10], [5], { dtype: "f64" });
    expect(log(y).toArray()).toEqual([1e-300, 0.5, 1, 2, 1e10].map(portable.log));
    // logSumExp's float64 loop too: m + log Σ e^(x − m)
    const m = Math.max(...xs);
    const want = m + portable.log(xs.reduce((a, v) => a + portable.exp(v - m), 0));
    expect(logSumExp(x).toArray()[0]).toBe(want);
  });
});

describe("portable math (the same bits on V8 and JavaScriptCore)", () => {
  const rng = (() => {
    let s = 12345;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  })();

  it("exp and log are within 1 ulp of Math.exp and Math.log", () => {
    let worstExp = 0;
    let worstLog = 0;
    for (let i = 0; i < 20000; i++) {
      const x = (rng() - 0.5) * 1400;
      const want = Math.exp(x);
      if (want > 0 && Number.isFinite(want)) worstExp = Math.max(worstExp, ulps(portable.exp(x), want));
      const y = 2 ** ((rng() - 0.5) * 2000) * (1 + rng());
      worstLog = Math.max(worstLog, ulps(portable.log(y), Math.log(y)));
    }
    expect(worstExp).toBeLessThanOrEqual(1);
    expect(worstLog).toBeLessThanOrEqual(1);
  });

  it("log1p is within 2 ulp of Math.log1p, from 2^-60 to 2^60 and down to −1", () => {
    let worst = 0;
    for (let i = 0; i < 20000; i++) {
      const x = i % 2 ? 2 ** ((rng() - 0.5) * 120) : -rng();
      worst = Math.max(worst, ulps(portable.log1p(x), Math.log1p(x)));
    }
    expect(worst).toBeLessThanOrEqual(2);
    expect([portable.log1p(0), portable.log1p(-1), portable.log1p(1e300)]).toEqual([0, -Infinity, Math.log(1e300)]);
    expect(Object.is(portable.log1p(-0), -0)).toBe(true);
  });

  it("exp and log give the IEEE special values", () => {
    expect(portable.exp(0)).toBe(1);
    expect(portable.exp(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(portable.exp(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(portable.exp(710)).toBe(Number.POSITIVE_INFINITY);
    expect(portable.exp(-746)).toBe(0);
    expect(portable.exp(-745)).toBe(5e-324);
    expect(portable.exp(Number.NaN)).toBeNaN();
    expect(portable.log(1)).toBe(0);
    expect(portable.log(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(portable.log(-0)).toBe(Number.NEGATIVE_INFINITY);
    expect(portable.log(-1)).toBeNaN();
    expect(portable.log(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(portable.log(5e-324)).toBe(Math.log(5e-324));
  });

  it("cosPi is within 4·2^-53 of Math.cos(π·t), exact at 0, ½ and 1; powInt within (1 + |n·ln b|) ulp", () => {
    let worst = 0;
    for (let i = 0; i < 20000; i++) {
      const t = rng();
      worst = Math.max(worst, Math.abs(portable.cosPi(t) - Math.cos(Math.PI * t)) / 2 ** -53);
    }
    expect(worst).toBeLessThanOrEqual(4);
    expect([portable.cosPi(0), portable.cosPi(0.5), portable.cosPi(1)]).toEqual([1, 0, -1]);
    expect(() => portable.cosPi(1.5)).toThrow("plait: cosPi: argument t must be in [0, 1], got 1.5");
    for (const [b, n] of [
      [0.9, 1],
      [0.999, 1000],
      [0.9999, 123456],
      [-0.5, 3],
      [2, 10],
    ]) {
      expect(ulps(powInt(b, n), b ** n)).toBeLessThanOrEqual(1 + Math.abs(n * Math.log(Math.abs(b))) * 2);
    }
    expect(powInt(0.5, 0)).toBe(1);
    expect(powInt(0, 3)).toBe(0);
    expect(() => powInt(0.9, 1.5)).toThrow("plait: powInt: argument n must be a non-negative integer, got 1.5");
  });
});
