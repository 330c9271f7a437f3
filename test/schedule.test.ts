// Learning-rate schedules against their formulas (as optax defines them) at the boundary steps.
import { describe, expect, it } from "vitest";
import { scope } from "../src/core/scope.ts";
import { tensor } from "../src/core/tensor.ts";
import {
  constant,
  cosineDecay,
  joinSchedules,
  linearWarmup,
  type Schedule,
  sgd,
  warmupCosine,
} from "../src/optim/index.ts";

/** Equal to within 4 float64 ulps of the larger magnitude. */
function expectNear(got: number, want: number, what: string) {
  const tol = 4 * Number.EPSILON * Math.max(Math.abs(got), Math.abs(want));
  expect(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want}`).toBe(true);
}

// The formulas, written out independently of the implementation.
const linear = (start: number, peak: number, warmup: number) => (s: number) =>
  start + ((peak - start) * Math.min(s, warmup)) / warmup;
const cosine = (init: number, decay: number, alpha: number) => (s: number) =>
  init * ((1 - alpha) * 0.5 * (1 + Math.cos((Math.PI * Math.min(s, decay)) / decay)) + alpha);

function expectSchedule(schedule: Schedule, formula: (s: number) => number, steps: number[]) {
  for (const s of steps) expectNear(schedule(s), formula(s), `step ${s}`);
}

describe("constant", () => {
  it("is the same at every step", () => {
    const s = constant(0.25);
    for (const step of [0, 1, 7, 1e6]) expect(s(step)).toBe(0.25);
  });
});

describe("linearWarmup", () => {
  it("goes from start to peak over warmupSteps, then stays at peak exactly", () => {
    const s = linearWarmup({ peak: 0.1, warmupSteps: 10, start: 0.01 });
    expectSchedule(s, linear(0.01, 0.1, 10), [0, 1, 5, 9]);
    for (const step of [10, 11, 1000]) expect(s(step)).toBe(0.1);
    expect(linearWarmup({ peak: 3, warmupSteps: 4 })(0)).toBe(0);
  });

  it("with 0 warmup steps is the peak from the first step", () => {
    expect(linearWarmup({ peak: 0.5, warmupSteps: 0 })(0)).toBe(0.5);
  });
});

describe("cosineDecay", () => {
  it("falls from init to alpha·init along half a cosine, then stays", () => {
    const s = cosineDecay({ init: 0.2, decaySteps: 100, alpha: 0.1 });
    expectSchedule(s, cosine(0.2, 100, 0.1), [0, 1, 25, 50, 99, 100, 101, 5000]);
    expect(s(0)).toBe(0.2);
    expectNear(s(50), 0.2 * 0.55, "midpoint");
    expectNear(s(100), 0.02, "end");
    expect(cosineDecay({ init: 1, decaySteps: 8 })(8)).toBe(0);
  });
});

describe("warmupCosine", () => {
  it("warms up linearly, then decays along a cosine to end at decaySteps (which counts the warmup)", () => {
    const s = warmupCosine({ peak: 1e-3, warmupSteps: 10, decaySteps: 110, end: 1e-5, start: 1e-4 });
    const warm = linear(1e-4, 1e-3, 10);
    const decay = cosine(1e-3, 100, 1e-5 / 1e-3);
    expectSchedule(s, (step) => (step < 10 ? warm(step) : decay(step - 10)), [0, 1, 9, 10, 11, 60, 109, 110, 111, 1e5]);
    expectNear(s(0), 1e-4, "start");
    expect(s(10)).toBe(1e-3);
    expectNear(s(60), (1e-3 + 1e-5) / 2, "midway through the decay");
    expectNear(s(110), 1e-5, "end");
  });

  it("with no warmup starts at peak; with peak 0 stays at 0", () => {
    expect(warmupCosine({ peak: 0.1, warmupSteps: 0, decaySteps: 10 })(0)).toBe(0.1);
    expect(warmupCosine({ peak: 0, warmupSteps: 2, decaySteps: 10, end: 0 })(5)).toBe(0);
  });
});

describe("joinSchedules", () => {
  it("switches at each boundary and restarts the count there", () => {
    const seen: string[] = [];
    const tag =
      (name: string): Schedule =>
      (step) => {
        seen.push(`${name}${step}`);
        return step;
      };
    const s = joinSchedules([tag("a"), tag("b"), tag("c")], [3, 5]);
    for (const step of [0, 2, 3, 4, 5, 9]) s(step);
    expect(seen).toEqual(["a0", "a2", "b0", "b1", "c0", "c4"]);
  });

  it("composes with the other schedules and feeds an optimizer step by step", () => {
    const lr = joinSchedules([linearWarmup({ peak: 0.5, warmupSteps: 2 }), constant(0.125)], [4]);
    scope(() => {
      const p = tensor(new Float64Array([0]), [1], { dtype: "f64" });
      const g = tensor(new Float64Array([1]), [1], { dtype: "f64" });
      const opt = sgd({ lr });
      let state = opt.init([p]);
      let want = 0;
      for (let step = 0; step < 7; step++) {
        state = opt.update([p], [g], state);
        want -= lr(step);
      }
      expect([0, 1, 2, 3, 4, 5, 6].map(lr)).toEqual([0, 0.25, 0.5, 0.5, 0.125, 0.125, 0.125]);
      expect(p.data()[0]).toBe(want);
    });
  });
});

describe("bad options", () => {
  it("names the schedule, the option and the value", () => {
    expect(() => constant(Number.NaN)).toThrow("plait: constant: option lr must be a finite number, got NaN");
    expect(() => linearWarmup({ peak: 0.1, warmupSteps: -1 })).toThrow(
      "plait: linearWarmup: option warmupSteps must be an integer ≥ 0, got -1",
    );
    expect(() => linearWarmup({ peak: 0.1, warmupSteps: 1.5 })).toThrow("got 1.5");
    expect(() => linearWarmup({ peak: Infinity, warmupSteps: 1 })).toThrow("option peak must be a finite number");
    expect(() => cosineDecay({ init: 0.1, decaySteps: 0 })).toThrow(
      "plait: cosineDecay: option decaySteps must be an integer ≥ 1, got 0",
    );
    expect(() => warmupCosine({ peak: 0.1, warmupSteps: 10, decaySteps: 10 })).toThrow(
      "plait: warmupCosine: option decaySteps must be an integer ≥ 11, got 10",
    );
    expect(() => joinSchedules([constant(1), constant(2)], [])).toThrow("2 schedules need 1 boundaries, got 0");
    expect(() => joinSchedules([constant(1), constant(2), constant(3)], [5, 2])).toThrow(
      "option boundaries[1] must be an integer ≥ 5, got 2",
    );
  });
});
