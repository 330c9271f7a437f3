import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { runtime } from "../src/core/runtime.ts";
import { liveWorkers, spawn } from "../src/launch/index.ts";
import { World } from "../src/launch/world.ts";
import { usedStackSlots } from "./stack-slots.ts";

// The fault matrix with real workers (spawn): whatever rank k does wrong, spawn rejects promptly
// with an error naming rank k and what it did, and no worker is left running; then the same for
// the script launcher, whose rank 0 is a process's main thread. Workers (and the fixture scripts)
// load plait from dist/: `npx tsc -p tsconfig.build.json` first.

const FIXTURE = new URL("./fixtures/faults.mjs", import.meta.url);
const SMOKE = new URL("./fixtures/spawn-smoke.mjs", import.meta.url);
const SCRIPT = fileURLToPath(new URL("./fixtures/launch-script.mjs", import.meta.url));
/**
 * Starting three workers takes up to a few seconds on a loaded 2-core machine; the fault then has
 * 5. What this bounds is "nothing waits for a timeout or a stalled rank": the fixtures' timeouts
 * are 20 s (10 minutes by default) and a stalled rank sleeps 60 s.
 */
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
  // no worker left running, and every rank's stack slot given back: counted around each test, so
  // that a leak fails the test that leaked, not every test after it
  let slots = 0;
  beforeEach(() => {
    slots = usedStackSlots();
  });
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
    it(`rank 1 stalls (${how}) past the timeout: it is the rank named`, async () => {
      const { error, ms } = await failure({ scenario: `stall-${how}`, k: 1, timeoutMs: 500 });
      expect(error.reason).toBe("timeout");
      expect(error.failedRank).toBe(1);
      expect(error.message).toMatch(
        /^plait: spawn: rank 1 did not arrive in allReduce \(call #1\): rank [02] timed out after 500 ms$/,
      );
      expect(ms).toBeLessThan(PROMPT_MS);
    });
  }

  it("the ranks that timed out catch the error and return: the stalled rank is still stopped", async () => {
    const { error, ms } = await failure({ scenario: "stall-caught", k: 1, timeoutMs: 500 });
    expect([error.reason, error.failedRank]).toEqual(["timeout", 1]);
    expect(error.message).toMatch(/^plait: spawn: rank 1 did not arrive in allReduce \(call #1\): rank [02] timed out/);
    expect(ms).toBeLessThan(PROMPT_MS); // not the stalled rank's 60 s
  });

  it("a rank whose event loop empties while it awaits is named in words", async () => {
    const { error, ms } = await failure({ scenario: "unsettled", k: 1 });
    expect(error.message).toBe(
      "plait: spawn: rank 1's main() never returned: its event loop emptied while it was still awaiting a promise that nothing was left to settle",
    );
    expect([error.reason, error.failedRank]).toEqual(["exited", 1]);
    expect(ms).toBeLessThan(PROMPT_MS);
  });

  it("a rank that fails while it starts, before it reports ready, gives back its stack slot", async () => {
    // The rank takes its stack slot as it attaches to the runtime, before it can say which one
    // it took. Here it then fails to open its communicator: this world's control block is spoilt
    // before the worker gets to it.
    for (let i = 0; i < 2; i++) {
      const world = new World({
        ...{ name: "launch", worldSize: 2, firstRank: 1, mode: "spawn", module: SMOKE.href, fn: "main" },
        ...{ threads: 1, timeoutMs: 20_000, spinMs: undefined, smallBytes: 0 },
      });
      Atomics.store(new Int32Array(runtime().memory.buffer, world.control, 1), 0, 0); // the magic word
      await expect(world.done).rejects.toThrow(/^plait: launch: rank 1 failed: Error: plait: no shm control block/);
      world.release();
      expect(usedStackSlots()).toBe(slots);
    }
  });

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

describe("script launcher faults (rank 0 is the process's main thread)", () => {
  function runScript(env: Record<string, string>) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [SCRIPT], {
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
  }

  it("rank 1 stalls: rank 0's collective names it, and join() in rank 0's finally ends", () => {
    // rank 1 sleeps 60 s instead of calling the barrier; rank 0 catches the timeout, then joins
    const r = runScript({ DEVICES: "2", SCENARIO: "stall", TIMEOUT_MS: "1000" });
    const fault = "rank 1 did not arrive in barrier (call #2): rank 0 timed out after 1000 ms";
    expect(r.stderr).toContain(`rank 0 caught CommError (failedRank 1): plait: barrier: ${fault}`);
    expect(r.stderr).toContain(`plait: launch: ${fault}`); // join()'s rejection, and the exit report
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain("all ranks done");
    expect(r.ms).toBeLessThan(20_000); // the stalled rank would sleep 60 s
  });

  it("a worker whose script ends without join(), still awaiting, is named in words", () => {
    const r = runScript({ DEVICES: "2", SCENARIO: "unsettled" });
    const fault =
      "rank 1's script ended without calling join(): its event loop emptied while it was still awaiting a promise that nothing was left to settle";
    expect(r.stderr).toContain(`rank 0 caught CommError (failedRank 1): plait: barrier: ${fault}`);
    expect(r.stderr).not.toContain("exited with code");
    expect(r.status).not.toBe(0);
    expect(r.ms).toBeLessThan(20_000);
  });
});
