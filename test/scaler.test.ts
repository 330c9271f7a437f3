import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  adjustScaler,
  deepspeedScaler,
  type LossScaler,
  noScaler,
  staticScaler,
  torchScaler,
} from "../src/precision/scaler.ts";

const run = (s: LossScaler, finite: boolean[]) => finite.reduce((acc, f) => adjustScaler(acc, f), s);

describe("torch GradScaler semantics", () => {
  it("doubles exactly on the 2000th consecutive finite step and resets the tracker", () => {
    const s0 = torchScaler();
    expect(s0.scale).toBe(65536);
    const s1999 = run(s0, Array(1999).fill(true));
    expect(s1999.scale).toBe(65536);
    const s2000 = run(s1999, [true]);
    expect(s2000.scale).toBe(131072);
    expect(s2000).toMatchObject({ growthTracker: 0 });
  });

  it("backs off on every overflow and restarts the count", () => {
    let s = run(torchScaler(), Array(1500).fill(true));
    s = run(s, [false]);
    expect(s.scale).toBe(32768);
    expect(s).toMatchObject({ growthTracker: 0 });
    s = run(s, [false, false]);
    expect(s.scale).toBe(8192);
    s = run(s, Array(1999).fill(true));
    expect(s.scale).toBe(8192);
    expect(run(s, [true]).scale).toBe(16384);
  });

  it("never grows to infinity and may fall below 1 (torch has no floor)", () => {
    const big = torchScaler({ initScale: 2 ** 127, growthInterval: 1 });
    expect(run(big, [true]).scale).toBe(2 ** 127);
    const small = run(torchScaler({ initScale: 1 }), [false, false]);
    expect(small.scale).toBe(0.25);
  });

  it("matches the documented update() on random overflow patterns", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), (pattern, interval) => {
        // Reference: torch's update() as documented, in plain arithmetic.
        let scale = 1024;
        let tracker = 0;
        for (const finite of pattern) {
          if (!finite) {
            scale *= 0.5;
            tracker = 0;
          } else if (++tracker === interval) {
            scale *= 2;
            tracker = 0;
          }
        }
        const s = run(torchScaler({ initScale: 1024, growthInterval: interval }), pattern);
        expect(s).toMatchObject({ scale, growthTracker: tracker });
      }),
    );
  });
});

describe("DeepSpeed DynamicLossScaler semantics", () => {
  it("grows on the 1000th finite step, counted from the start (last overflow = -1)", () => {
    const s999 = run(deepspeedScaler(), Array(999).fill(true));
    expect(s999.scale).toBe(2 ** 16);
    expect(run(s999, [true]).scale).toBe(2 ** 17);
  });

  it("spends hysteresis on the first overflow, halves on the next, and counts the window from the last overflow", () => {
    let s = run(deepspeedScaler(), Array(10).fill(true));
    s = run(s, [false]); // iter 10: hysteresis 2 → 1, scale kept (the step is still skipped by the caller)
    expect(s).toMatchObject({ scale: 2 ** 16, curHysteresis: 1, lastOverflowIter: 10 });
    s = run(s, [false]); // iter 11: halves
    expect(s).toMatchObject({ scale: 2 ** 15, lastOverflowIter: 11 });
    s = run(s, Array(999).fill(true)); // iters 12..1010
    expect(s.scale).toBe(2 ** 15);
    s = run(s, [true]); // iter 1011: 1011 - 11 = 1000
    expect(s).toMatchObject({ scale: 2 ** 16, curHysteresis: 2 });
  });

  it("raises at the minimum scale instead of going below it", () => {
    const s = deepspeedScaler({ initialScalePower: 1, minLossScale: 1, hysteresis: 1 });
    const at1 = run(s, [false]);
    expect(at1.scale).toBe(1);
    expect(() => run(at1, [false])).toThrow(/already at its minimum \(1\)/);
  });

  it("halves to the floor, not past it, when half the scale is below the minimum (hand-computed)", () => {
    // scale 4, minimum 3: 4 / 2 = 2 < 3, so the floor gives 3 (DeepSpeed: max(cur_scale / 2, min_scale)).
    const s = deepspeedScaler({ initialScalePower: 2, minLossScale: 3, hysteresis: 1, lossScaleWindow: 1000 });
    expect(s.scale).toBe(4);
    const floored = run(s, [false]);
    expect(floored).toMatchObject({ scale: 3, iter: 1, lastOverflowIter: 0 });
    expect(() => run(floored, [false])).toThrow(/already at its minimum \(3\)/);
    // With hysteresis 2 the first overflow only spends it; the second lands on the same floor.
    const h = run(deepspeedScaler({ initialScalePower: 2, minLossScale: 3, hysteresis: 2 }), [false, false]);
    expect(h).toMatchObject({ scale: 3, curHysteresis: 1 });
    // From the floor, a full window of finite steps doubles it: 3 → 6 (not 2 → 4).
    const grown = run(deepspeedScaler({ initialScalePower: 2, minLossScale: 3, hysteresis: 1, lossScaleWindow: 2 }), [
      false,
      true,
      true,
    ]);
    expect(grown.scale).toBe(6);
  });

  it("matches DeepSpeed's documented update_scale on random overflow patterns", () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { maxLength: 80 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        (pattern, window, hysteresis, consecutive) => {
          // Reference: DeepSpeed's update_scale(overflow) with its initial state, in plain arithmetic.
          let cur = 2 ** 20;
          let iter = 0;
          let last = -1;
          let hyst = hysteresis;
          for (const finite of pattern) {
            if (!finite) {
              if (hysteresis === 1 || hyst === 1) cur = Math.max(cur / 2, 1);
              else hyst -= 1;
              last = iter;
            } else {
              if (consecutive) hyst = hysteresis;
              if ((iter - last) % window === 0) {
                if (!consecutive) hyst = hysteresis;
                cur *= 2;
              }
            }
            iter++;
          }
          const s = run(
            deepspeedScaler({
              initialScalePower: 20,
              lossScaleWindow: window,
              hysteresis,
              consecutiveHysteresis: consecutive,
            }),
            pattern,
          );
          expect(s).toMatchObject({ scale: cur, curHysteresis: hyst, iter, lastOverflowIter: last });
        },
      ),
    );
  });
});

describe("loss scaler options", () => {
  it("rejects non-positive and contradictory options, naming them", () => {
    expect(() => torchScaler({ initScale: 0 })).toThrow(/initScale must be a finite number > 0, got 0/);
    expect(() => torchScaler({ growthFactor: 1 })).toThrow(/growthFactor must be a finite number > 1/);
    expect(() => torchScaler({ backoffFactor: 1.5 })).toThrow(/backoffFactor must be a number in \(0, 1\)/);
    expect(() => torchScaler({ growthInterval: 0 })).toThrow(/growthInterval must be a positive integer/);
    expect(() => staticScaler(-1)).toThrow(/scale must be a finite number > 0, got -1/);
    expect(() => deepspeedScaler({ hysteresis: 0 })).toThrow(/hysteresis must be a positive integer/);
    expect(() => deepspeedScaler({ initialScalePower: 0, minLossScale: 2 })).toThrow(
      /initialScalePower must be at least/,
    );
  });

  it("static and none never change", () => {
    expect(run(staticScaler(128), [false, true, false]).scale).toBe(128);
    expect(run(noScaler(), [false]).scale).toBe(1);
  });
});
