import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { launch, liveWorkers, spawn } from "../src/launch/index.ts";

// The launchers under Node. spawn() runs in this process; the script launcher runs fixture scripts
// as their own processes (its rank 0 is a process's main thread). Workers, and the fixture
// scripts, load plait from dist/: `npx tsc -p tsconfig.build.json` first.

const SMOKE = new URL("./fixtures/spawn-smoke.mjs", import.meta.url);
const SCRIPT = fileURLToPath(new URL("./fixtures/launch-script.mjs", import.meta.url));
const ARGV_SCRIPT = fileURLToPath(new URL("./fixtures/launch-argv.mjs", import.meta.url));

describe("devices", () => {
  const allowed = 'must be an integer from 1 to 256 or "auto"';
  for (const devices of [0, -1, 1.5, "x", 257, Number.NaN]) {
    it(`rejects ${JSON.stringify(devices)}`, async () => {
      const got = JSON.stringify(devices) ?? String(devices);
      await expect(spawn(SMOKE, "main", { devices: devices as number })).rejects.toThrow(
        `plait: spawn: option devices ${allowed}, got ${got}`,
      );
      await expect(launch({ devices: devices as number })).rejects.toThrow(
        `plait: launch: option devices ${allowed}, got ${got}`,
      );
    });
  }
});

describe("spawn", () => {
  afterEach(() => expect(liveWorkers()).toBe(0));

  it("runs the function on every rank and resolves with the results in rank order", async () => {
    const results = await spawn<any>(SMOKE, "main", { devices: 3, args: { lr: 0.1, tags: ["a"] } });
    const share = Math.max(1, Math.floor(availableParallelism() / 3));
    expect(results).toEqual(
      [0, 1, 2].map((rank) => ({
        rank,
        worldSize: 3,
        isMain: rank === 0,
        threads: process.env.PLAIT_THREADS ? Number(process.env.PLAIT_THREADS) : share,
        sum: [6, 30],
        args: { lr: 0.1, tags: ["a"] },
        argv: process.argv, // every rank sees the argv of the thread that called spawn()
        execArgv: process.execArgv,
      })),
    );
  });

  it('"auto" starts one rank per core; PLAIT_THREADS sets each rank\'s kernel threads', async () => {
    const before = process.env.PLAIT_THREADS;
    process.env.PLAIT_THREADS = "3";
    try {
      const results = await spawn<any>(SMOKE, "main", { devices: "auto" });
      expect(results.length).toBe(availableParallelism());
      expect(results.every((r) => r.threads === 3)).toBe(true);
    } finally {
      if (before === undefined) delete process.env.PLAIT_THREADS;
      else process.env.PLAIT_THREADS = before;
    }
  });

  it("one device: a world of one with the local communicator", async () => {
    const [only] = await spawn<any>(SMOKE, "main", { devices: 1, args: 7 });
    expect(only).toMatchObject({ rank: 0, worldSize: 1, isMain: true, sum: [1, 10], args: 7 });
  });

  it("names a missing export, and a result it cannot send back", async () => {
    const missing = spawn(SMOKE, "nope", { devices: 2 });
    await expect(missing).rejects.toBeInstanceOf(CommError);
    await expect(missing).rejects.toThrow(
      /^plait: spawn: rank [01] failed: TypeError: plait: spawn: file:.*spawn-smoke\.mjs has no exported function nope \(it exports main, unsendable\)$/,
    );
    await expect(spawn(SMOKE, "unsendable", { devices: 2 })).rejects.toThrow(
      /rank [01] failed: TypeError: plait: spawn: rank [01]'s unsendable\(\) returned a value that cannot be sent back \(structured clone\)/,
    );
  });

  it("checks its arguments", async () => {
    await expect(spawn(42 as any, "main")).rejects.toThrow(
      "plait: spawn: argument module must be a URL or a path, got 42",
    );
    await expect(spawn(SMOKE, "")).rejects.toThrow(
      'plait: spawn: argument fn must be the name of an exported function, got ""',
    );
    await expect(spawn(SMOKE, "main", { devices: 2, timeoutMs: -5 })).rejects.toThrow(
      "plait: spawn: option timeoutMs must be a number of milliseconds in (0, 2^31), got -5",
    );
    await expect(spawn(SMOKE, "main", { device: 2 } as any)).rejects.toThrow(
      "plait: spawn: unknown option device; known: devices, args, timeoutMs",
    );
    await expect(spawn(SMOKE, "main", 2 as any)).rejects.toThrow("plait: spawn: options must be an object, got number");
    await expect(launch({ devices: 2, timeout: 5 } as any)).rejects.toThrow(
      "plait: launch: unknown option timeout; known: devices, script, timeoutMs",
    );
    await expect(launch({ devices: 2, timeoutMs: 0 })).rejects.toThrow(
      "plait: launch: option timeoutMs must be a number of milliseconds in (0, 2^31), got 0",
    );
    process.env.PLAIT_SHM_SMALL_BYTES = "1000";
    try {
      await expect(spawn(SMOKE, "main", { devices: 2 })).rejects.toThrow(
        'plait: PLAIT_SHM_SMALL_BYTES must be a multiple of 64 from 0 to 16777216, got "1000"',
      );
    } finally {
      delete process.env.PLAIT_SHM_SMALL_BYTES;
    }
    process.env.PLAIT_SHM_SPIN_MS = "-1";
    try {
      await expect(spawn(SMOKE, "main", { devices: 2 })).rejects.toThrow(
        'plait: PLAIT_SHM_SPIN_MS must be a number of milliseconds from 0 to 1000, got "-1"',
      );
    } finally {
      delete process.env.PLAIT_SHM_SPIN_MS;
    }
  });
});

describe("script launcher", () => {
  function runScript(env: Record<string, string>) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [SCRIPT], {
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
  }

  it("re-runs the script on every rank; the run ends when every rank's script has", () => {
    const r = runScript({ DEVICES: "3", SCENARIO: "ok" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n").sort();
    expect(lines).toEqual([
      "all ranks done",
      "rank 0/3 main=true sum=6,3",
      "rank 1/3 main=false sum=6,3",
      "rank 2/3 main=false sum=6,3",
    ]);
  });

  it("every rank sees rank 0's argv and execArgv: a script parses the same flags on each", () => {
    const args = ["--lr", "0.1", "mode", "--verbose"];
    const r = spawnSync(process.execPath, ["--no-deprecation", ARGV_SCRIPT, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const ranks = r.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
      .sort((a, b) => a.rank - b.rank);
    expect(ranks.map((x) => x.rank)).toEqual([0, 1]);
    for (const x of ranks) {
      expect(x.values).toEqual({ lr: "0.1", verbose: true });
      expect(x.positionals).toEqual(["mode"]);
      expect(x.script).toBe(ARGV_SCRIPT);
      expect(x.execArgv).toEqual(["--no-deprecation"]);
    }
  });

  it("a rank's script ends when its work does, even work it started without awaiting", () => {
    const r = runScript({ DEVICES: "2", SCENARIO: "not-awaited" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("all ranks done");
  });

  it("ends when the workers do even if rank 0 never calls join()", () => {
    const r = runScript({ DEVICES: "2", SCENARIO: "no-join" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("rank 1/2 main=false sum=3,2");
  });

  for (const [scenario, message] of [
    // printed by launch's failure handler, or by rank 0's rejected collective, whichever comes first
    ["throw", "rank 1 failed: Error: boom on rank 1"],
    ["exit", "rank 1's worker exited with code 5 before its work was done"],
  ]) {
    it(`a worker that fails (${scenario}) ends the run promptly with a non-zero exit code`, () => {
      const r = runScript({ DEVICES: "3", SCENARIO: scenario });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(message);
      expect(r.ms).toBeLessThan(15_000);
    });
  }

  it("rank 0 throwing ends the process with a non-zero exit code", () => {
    const r = runScript({ DEVICES: "2", SCENARIO: "main-throws" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("boom on rank 0");
    expect(r.ms).toBeLessThan(15_000);
  });
});
