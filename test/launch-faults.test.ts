import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { liveWorkers, spawn } from "../src/launch/index.ts";
import { usedStackSlots } from "./stack-slots.ts";

// The fault matrix with real workers (spawn): whatever rank k does wrong, spawn rejects promptly
// with an error naming rank k and what it did, and no worker is left running.
// Workers load plait from dist/: `npx tsc -p tsconfig.build.json` first.

const FIXTURE = new URL("./fixtures/faults.mjs", import.meta.url);
/** Starting three workers takes up to a few seconds on a loaded 2-core machine; the fault then has 5. */
const PROMPT_MS = 9000;

async function failure(args: Record<string, unknown>, devices = 3): Promise<{ error: CommError; ms: number }> {
  const t0 = performance.now();
  try {
    await spawn(FIXTURE, "main", { devices, args, timeoutMs: 20_000 });
  } catch (error) {
    expect(error).toBeInstanceOf(CommError);
    return { error: error as CommError, ms: performance.now() - t0 };
  }
  throw new Error(`spawn resolved for ${JSON.stringify(args)}`);
}

describe("fault matrix with worker ranks", () => {
  let slots = 0;
  beforeAll(() => {
    slots = usedStackSlots();
  });
  // no worker left running, and every rank's stack slot given back
  afterEach(() => {
    expect(liveWorkers()).toBe(0);
    expect(usedStackSlots()).toBe(slots);
  });

  for (const when of ["before", "during", "after"]) {
    for (const k of [0, 2]) {
      it(`rank ${k} throws ${when} a collective`, async () => {
        const { error, ms } = await failure({ scenario: `throw-${when}`, k });
        expect(error.message).toBe(`plait: spawn: rank ${k} failed: Error: boom on rank ${k}`);
        expect(error.reason).toBe("failed");
        expect(error.failedRank).toBe(k);
        expect((error.cause as Error).message).toBe(`boom on rank ${k}`);
        expect(ms).toBeLessThan(PROMPT_MS);
      });
    }
  }

  for (const when of ["before", "during"]) {
    it(`rank 1's worker exits ${when} a collective`, async () => {
      const { error, ms } = await failure({ scenario: `exit-${when}`, k: 1 });
      expect(error.message).toBe("plait: spawn: rank 1's worker exited with code 3 before its work was done");
      expect(error.reason).toBe("exited");
      expect(error.failedRank).toBe(1);
      expect(ms).toBeLessThan(PROMPT_MS);
    });
  }

  for (const how of ["async", "sync"]) {
    it(`rank 1 stalls (${how}) past the timeout`, async () => {
      const { error, ms } = await failure({ scenario: `stall-${how}`, k: 1, timeoutMs: 500 });
      expect(error.reason).toBe("timeout");
      expect(error.message).toMatch(
        /^plait: spawn: rank [02] timed out after 500 ms in allReduce \(call #1\): rank 1 did not arrive$/,
      );
      expect(ms).toBeLessThan(PROMPT_MS);
    });
  }

  it("a rank that returns early makes its peers' next collective fail at once", async () => {
    const t0 = performance.now();
    const results = await spawn<any>(FIXTURE, "main", { devices: 2, args: { scenario: "end-early", k: 1 } });
    expect(results[1]).toBe("ended");
    expect(results[0]).toEqual({
      message: "plait: allReduce: rank 1 ended without calling allReduce (call #1)",
      reason: "ended",
      failedRank: 1,
    });
    expect(performance.now() - t0).toBeLessThan(PROMPT_MS);
  });

  it("an AbortSignal ends the waits of the ranks that set it, and the late rank learns why", async () => {
    const results = await spawn<any>(FIXTURE, "abort", { devices: 3, args: { k: 2 } });
    const [r0, r1, r2] = results;
    // both waiting ranks report the first abort; the late rank's barrier reports it too
    expect(r0.message).toMatch(/^plait: allReduce: rank [01] aborted allReduce \(call #1\): TimeoutError: /);
    expect(r1.message).toBe(r0.message);
    expect(r2.message).toBe(r0.message.replace("plait: allReduce:", "plait: barrier:"));
    for (const r of results) expect(r.reason).toBe("aborted");
  });
});
