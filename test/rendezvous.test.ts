// The TCP rendezvous store (src/comm/rendezvous.ts): ranks as separate processes
// (test/fixtures/rendezvous-rank.mjs, loading dist/) hand a 128-byte id from rank 0 to the
// others, count, and meet at a barrier; the faults each give an error that names what went wrong.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { storeFromEnv, TcpStore } from "../src/comm/rendezvous.ts";

const RANK = fileURLToPath(new URL("./fixtures/rendezvous-rank.mjs", import.meta.url));
const HOST = "127.0.0.1";

interface Result {
  ok: boolean;
  code: number | null;
  error?: string;
  name?: string;
  failedRank?: number;
  id?: string;
  after?: number;
  port?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts one rank; resolves with its JSON line and exit code. `onLine` sees the first line early. */
function rank(
  c: { port: number; rank: number; worldSize: number; timeoutMs: number; mode?: string },
  onStart?: (kill: () => void) => void,
  onLine?: (r: Result) => void,
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RANK], {
      env: { ...process.env, PLAIT_RDV: JSON.stringify({ host: HOST, ...c }) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    onStart?.(() => child.kill("SIGKILL"));
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
      if (onLine && text.includes("\n")) onLine(JSON.parse(text.split("\n")[0]));
    });
    child.on("close", (code) => {
      const line = text.split("\n").find((l) => l.startsWith("{"));
      resolve({ ...(line ? JSON.parse(line) : { ok: false, error: `no output (exit ${code})` }), code });
    });
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("TcpStore across processes", () => {
  it("four ranks: rank 0 starts last, everyone gets its 128 bytes, counts and meets", async () => {
    const port = await freePort();
    const others = [1, 2, 3].map((r) => rank({ port, rank: r, worldSize: 4, timeoutMs: 20_000 }));
    await delay(700); // the others retry until rank 0 listens
    const all = [await rank({ port, rank: 0, worldSize: 4, timeoutMs: 20_000 }), ...(await Promise.all(others))];
    for (const r of all) expect(r, JSON.stringify(r)).toMatchObject({ ok: true, code: 0, after: 10 });
    expect(new Set(all.map((r) => r.id)).size).toBe(1);
    expect(all[0].id).toHaveLength(256);
  });

  it("rank 0 absent: the others give up at their deadline and say where they looked", async () => {
    const port = await freePort();
    const r = await rank({ port, rank: 1, worldSize: 2, timeoutMs: 800 });
    expect(r.ok).toBe(false);
    expect(r.code).toBe(1);
    expect(r.error).toContain(`rank 1 found no store at ${HOST}:${port} within 800 ms`);
    expect(r.error).toMatch(/is rank 0 running.*ECONNREFUSED/);
    expect(r).toMatchObject({ name: "CommError", failedRank: 0 });
  });

  it("a wrong world size is refused by name, and rank 0's barrier names the rank it lacks", async () => {
    const port = await freePort();
    const zero = rank({ port, rank: 0, worldSize: 2, timeoutMs: 2500 });
    await delay(300);
    const one = await rank({ port, rank: 1, worldSize: 3, timeoutMs: 2500 });
    expect(one.ok).toBe(false);
    expect(one.error).toContain("rank 1 says the world has 3 ranks, but rank 0 (the store) says 2");
    const r0 = await zero;
    expect(r0.ok).toBe(false);
    expect(r0.error).toMatch(
      /rank 1 of 2 did not arrive .* rank 0 timed out after \d+ ms; the store refused: rank 1 says/,
    );
    expect(r0.failedRank).toBe(1);
  });

  it("two processes with the same rank: the second is refused", async () => {
    const port = await freePort();
    let kill = () => {};
    let started!: () => void;
    const up = new Promise<void>((r) => {
      started = r;
    });
    const zero = rank(
      { port, rank: 0, worldSize: 3, timeoutMs: 10_000, mode: "listen-only" },
      (k) => {
        kill = k;
      },
      () => started(),
    );
    await up;
    const first = rank({ port, rank: 1, worldSize: 3, timeoutMs: 10_000 });
    await delay(300);
    const second = await rank({ port, rank: 1, worldSize: 3, timeoutMs: 10_000 });
    expect(second.error).toContain("rank 1 is already connected to the store: two processes were given RANK=1");
    kill();
    await zero;
    const r1 = await first; // waiting for the id when rank 0 died
    expect(r1.ok).toBe(false);
    expect(r1.error).toMatch(/closed rank 1's connection: rank 0 ended/);
  });

  it("port in use: rank 0 says so and how to fix it", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, HOST, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await rank({ port, rank: 0, worldSize: 2, timeoutMs: 2000 });
      expect(r.ok).toBe(false);
      expect(r.error).toContain(
        `rank 0 cannot start the store at ${HOST}:${port}: port ${port} is in use (EADDRINUSE)`,
      );
      expect(r.error).toContain("pick another MASTER_PORT");
    } finally {
      blocker.close();
    }
  });
});

describe("TcpStore in one process", () => {
  it("port 0 picks a port; get waits for set; tryGet never waits; a key never set times out by name", async () => {
    const s0 = await TcpStore.connect({ host: HOST, port: 0, rank: 0, worldSize: 2, timeoutMs: 5000 });
    const s1 = await TcpStore.connect({ host: HOST, port: s0.port, rank: 1, worldSize: 2, timeoutMs: 5000 });
    try {
      expect(s0.port).toBeGreaterThan(0);
      const waiting = s1.get("k");
      await delay(50);
      await s0.set("k", "value");
      expect(Buffer.from(await waiting).toString()).toBe("value");
      expect(await s1.tryGet("absent")).toBeUndefined();
      expect(Buffer.from((await s1.tryGet("k"))!).toString()).toBe("value");
      await s0.set("empty", new Uint8Array(0));
      expect((await s1.tryGet("empty"))?.length).toBe(0);
      const e = await s1.get("never", { timeoutMs: 150 }).catch((x) => x);
      expect(e).toBeInstanceOf(CommError);
      expect(e.message).toContain(`rank 1 waited 150 ms for key "never" in the store at ${HOST}:${s0.port}`);
      await Promise.all([s0.arrive("b"), s1.arrive("b")]);
    } finally {
      await s1.close();
      await s0.close();
    }
  });

  it("arrive names the ranks that never came", async () => {
    const s0 = await TcpStore.connect({ host: HOST, port: 0, rank: 0, worldSize: 3, timeoutMs: 5000 });
    const s2 = await TcpStore.connect({ host: HOST, port: s0.port, rank: 2, worldSize: 3, timeoutMs: 5000 });
    try {
      const two = s2.arrive("x", { timeoutMs: 300 }).catch((x) => x);
      const e = await s0.arrive("x", { timeoutMs: 200 }).catch((x) => x);
      expect((await two).message).toMatch(/rank 1 of 3 did not arrive .* rank 2 timed out after 300 ms/);
      expect(e).toBeInstanceOf(CommError);
      expect(e.message).toMatch(/rendezvous "x": rank 1 of 3 did not arrive/);
      expect(e.failedRank).toBe(1);
    } finally {
      await s2.close();
      await s0.close({ graceMs: 0 });
    }
  });

  it("another program on the port: the connecting rank says it is not plait's store", async () => {
    const other: Server = createServer((s) => s.on("data", () => s.write("HTTP/1.1 400 Bad Request\r\n\r\n")));
    await new Promise<void>((r) => other.listen(0, HOST, () => r()));
    const port = (other.address() as { port: number }).port;
    try {
      const e = await TcpStore.connect({ host: HOST, port, rank: 1, worldSize: 2, timeoutMs: 2000 }).catch((x) => x);
      expect(e.message).toContain(`the store at ${HOST}:${port} sent a frame of`);
      expect(e.message).toContain("not plait's rendezvous protocol");
    } finally {
      other.close();
    }
  });

  it("bad arguments and missing variables are named", async () => {
    await expect(TcpStore.connect({ host: HOST, port: 0, rank: 2, worldSize: 2 })).rejects.toThrow(
      "option rank must be an integer in [0, 1], got 2",
    );
    await expect(TcpStore.connect({ host: HOST, port: 70000, rank: 0, worldSize: 2 })).rejects.toThrow(
      "option port must be an integer in [0, 65535], got 70000",
    );
    await expect(TcpStore.connect({ host: "", port: 1, rank: 0, worldSize: 1 })).rejects.toThrow("option host");
    await expect(TcpStore.connect({ host: HOST, port: 1, rank: 0, worldSize: 1, tries: 3 } as never)).rejects.toThrow(
      "unknown option tries",
    );
    await expect(storeFromEnv({ MASTER_ADDR: HOST, RANK: "0", WORLD_SIZE: "1" })).rejects.toThrow(
      "MASTER_PORT is not set",
    );
    await expect(storeFromEnv({ MASTER_ADDR: HOST, MASTER_PORT: "x", RANK: "0", WORLD_SIZE: "1" })).rejects.toThrow(
      'MASTER_PORT must be a non-negative integer, got "x"',
    );
    const s = await storeFromEnv({ MASTER_ADDR: HOST, MASTER_PORT: "0", RANK: "0", WORLD_SIZE: "1" });
    await expect(s.get("", {})).rejects.toThrow("argument key must be a non-empty string");
    await s.close();
  });
});
