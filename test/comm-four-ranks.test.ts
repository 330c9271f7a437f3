import { afterAll, describe, expect, it } from "vitest";
import { liveWorkers, spawn } from "../src/launch/index.ts";

// A second, independent check of the four-rank collectives (test/comm-shm.test.ts checks them
// against test/fixtures/reference.mjs): inputs chosen so that each result is worked out by hand
// below. Ranks are worker threads running test/fixtures/four-ranks.mjs (plait from dist/).

const FIXTURE = new URL("./fixtures/four-ranks.mjs", import.meta.url);
/** Past the one-barrier (staging) limit of 64 KiB, so the sliced path runs too. */
const LARGE = 40_001;

describe("four ranks, hand-computed", () => {
  afterAll(() => expect(liveWorkers()).toBe(0));

  it("allReduce, reduceScatter, broadcast and allGather give the worked-out values on every rank", async () => {
    const ranks = await spawn<Record<string, unknown>>(FIXTURE, "main", {
      devices: 4,
      args: { large: LARGE },
      timeoutMs: 60_000,
    });
    const j = [1, 2, 3, 4, 5, 6, 7, 8, 9]; // element j + 1 of "multiples": rank r holds (r + 1)·(j + 1)
    const want = {
      "f32 sum": j.map((x) => 10 * x), // 1 + 2 + 3 + 4 = 10
      "f32 avg": j.map((x) => 2.5 * x),
      "f32 min": j,
      "f32 max": j.map((x) => 4 * x),
      "f64 sum": [10, 20, 30],
      "f32 order": [0, 0, 0, 0, 0],
      "f32 order large": 0, // elements that are not 0
      "f16 avg": [512.5],
      "i32 sum": [-(2 ** 31), 0 + 1 + 2 + 3],
      "i32 max": [7],
      // 10 elements over 4 ranks: shards of 3, 3, 2, 2 (the first n mod 4 ranks get one more)
      "f32 reduceScatter sum": [
        [10, 20, 30],
        [40, 50, 60],
        [70, 80],
        [90, 100],
      ],
      "f32 broadcast from 2": [3, 6, 9],
      "i32 allGather": [0, 1, 10, 11, 20, 21, 30, 31],
    };
    expect(ranks).toHaveLength(4);
    ranks.forEach((got, rank) => {
      const mine = { ...want, "f32 reduceScatter sum": want["f32 reduceScatter sum"][rank] };
      expect(got, `rank ${rank}`).toEqual(mine);
    });
  }, 120_000);
});
