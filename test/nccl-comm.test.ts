// NcclComm without a GPU: test/fixtures/fake-nccl.c, built here with cc, stands in for both
// libnccl.so.2 and the CUDA runtime (host memory as device memory; each rank acts alone). It
// checks what koffi hands NCCL (the 128-byte id by value, the ncclConfig_t, counts, dtypes, ops,
// roots), the non-blocking init and completion polling, and every failure path: init that
// hangs or fails, an async error, a stream that never finishes, an AbortSignal, a peer's fault
// notice through the TCP store. Skipped where no C compiler is installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { deviceStream } from "../ffi/cuda/backend.ts";
import { free, malloc, memcpyDtoH, memcpyHtoD } from "../ffi/cuda/runtime.ts";
import { openNative } from "../ffi/native.ts";
import { loadNccl, ncclUniqueId } from "../ffi/nccl.ts";
import { CommError } from "../src/comm/errors.ts";
import { localComm } from "../src/comm/local.ts";
import { type DeviceTensor, NcclComm, shareUniqueId } from "../src/comm/nccl.ts";
import { TcpStore } from "../src/comm/rendezvous.ts";
import { Tensor, tensor } from "../src/core/tensor.ts";
import { skipMpi } from "./native.ts";

const SOURCE = fileURLToPath(new URL("./fixtures/fake-nccl.c", import.meta.url));
const cc = (() => {
  for (const c of ["cc", "gcc", "clang"]) {
    try {
      execFileSync(c, ["--version"], { stdio: "ignore" });
      return c;
    } catch {}
  }
  return undefined;
})();

let fake: { set(what: number, value: number): void; get(what: number): number; last(): string; reset(): void };

beforeAll(() => {
  if (!cc) return;
  const lib = join(mkdtempSync(join(tmpdir(), "plait-fake-nccl-")), "libfake.so");
  execFileSync(cc, ["-shared", "-fPIC", "-O1", "-o", lib, SOURCE]);
  process.env.PLAIT_NCCL = lib;
  process.env.PLAIT_CUDART = lib;
  const native = openNative(lib);
  const set = native.func("void fake_set(int what, int value)");
  const get = native.func("int fake_get(int what)");
  const last = native.func("const char *fake_last()");
  const reset = native.func("void fake_reset()");
  fake = { set, get, last: () => String(last()), reset };
});
afterEach(() => {
  if (!fake) return;
  const stale = fake.get(USED_AFTER_FREE);
  fake.reset();
  // NCCL frees a communicator in ncclCommAbort and ncclCommDestroy: nothing may touch it after
  expect(stale, "calls on an aborted or destroyed communicator").toBe(0);
});

const ABORTS = 0;
const DESTROYS = 1;
const FINALIZES = 2;
const USED_AFTER_FREE = 5;

/** A DeviceTensor over the fake's "device" memory (host memory). */
class Buf implements DeviceTensor {
  readonly size: number;
  readonly byteLength: number;
  readonly ptr: bigint;
  disposed = false;
  constructor(
    readonly shape: readonly number[],
    readonly dtype: DeviceTensor["dtype"],
    readonly deviceIndex: number,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.size * { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 }[dtype];
    this.ptr = malloc(Math.max(1, this.byteLength));
  }
  static f32(values: number[], device = 0): Buf {
    const b = new Buf([values.length], "f32", device);
    const src = Float32Array.from(values);
    memcpyHtoD(b.ptr, src);
    return b;
  }
  values(): number[] {
    const out = new Float32Array(this.size);
    memcpyDtoH(out, this.ptr);
    return Array.from(out);
  }
  dispose(): void {
    if (!this.disposed) free(this.ptr);
    this.disposed = true;
  }
}

const one = async (extra: Partial<Parameters<typeof NcclComm.init>[0]> = {}) =>
  NcclComm.init({ rank: 0, worldSize: 1, device: 0, id: ncclUniqueId(), timeoutMs: 5000, ...extra });

describe.skipIf(!cc)("NcclComm on a stand-in NCCL (no GPU)", () => {
  it("loads, reports its version, and makes 128-byte ids", () => {
    const nccl = loadNccl();
    expect(nccl.version).toBe("2.30.7");
    expect(nccl.describe(6)).toBe("ncclRemoteError: remote process exited or there was a network error");
    const id = ncclUniqueId(nccl);
    expect(id.length).toBe(128);
    expect(id[1]).toBe(6);
  });

  it("an NCCL older than 2.14 is refused by its version", async () => {
    fake.set(3, 21304);
    const { loadNccl: load } = await import("../ffi/nccl.ts");
    expect(() => load(`${process.env.PLAIT_NCCL}`)).toThrow(
      /NCCL 2\.13\.4 is older than 2\.14, the first with non-blocking communicators, which plait needs/,
    );
  });

  it("init passes the id by value and a valid ncclConfig_t; collectives pass counts, dtypes, ops and roots", async () => {
    const comm = await one();
    expect(comm.library.version).toBe("2.30.7");
    const x = Buf.f32([1, 2, 3, 4, 5]);
    await comm.allReduce(x, "avg");
    expect(fake.last()).toMatch(/^ncclAllReduce count=5 dtype=7 op=4 inplace=1 stream=0x[0-9a-f]+$/);
    // by default on plait's stream for the device, where its device ops run
    expect(fake.last()).toContain(`stream=0x${deviceStream(0).toString(16)}`);
    for (const [dtype, code] of [
      ["f64", 8],
      ["f16", 6],
      ["bf16", 9],
      ["i32", 2],
    ] as const) {
      const t = new Buf([3], dtype, 0);
      await comm.allReduce(t, dtype === "i32" ? "max" : "min");
      expect(fake.last()).toContain(`count=3 dtype=${code} op=${dtype === "i32" ? 2 : 3}`);
      t.dispose();
    }
    await comm.broadcast(x, 0);
    expect(fake.last()).toMatch(/^ncclBroadcast count=20 dtype=1 root=0 inplace=1/);
    const g = await comm.allGather(x);
    expect(g).toBeInstanceOf(Buf);
    expect(g.values()).toEqual([1, 2, 3, 4, 5]);
    const s = await comm.reduceScatter(x, "sum");
    expect(s.values()).toEqual([1, 2, 3, 4, 5]);
    await comm.barrier();
    expect(fake.last()).toMatch(/^ncclAllReduce count=1 dtype=2 op=0/);
    await comm.destroy();
    expect([fake.get(FINALIZES), fake.get(DESTROYS), fake.get(ABORTS)]).toEqual([1, 1, 0]);
    for (const t of [x, g, s]) t.dispose();
  });

  it("a tree of leaves goes out in one group; a stream passed in is the one used", async () => {
    const comm = await one({ stream: 0x1234n });
    const a = Buf.f32([1, 2]);
    const b = Buf.f32([3]);
    const tree = { b: [b], a };
    expect(await comm.allReduce(tree, "sum")).toBe(tree);
    expect(fake.last()).toMatch(/count=1 .*stream=0x1234$/); // keys in sorted order: a, then b
    await comm.destroy();
  });

  it("reduceScatter with uneven shards pads, and each rank gets shardRange's slice", async () => {
    const id = ncclUniqueId();
    for (const [rank, want] of [
      [0, [1, 2, 3]],
      [1, [4, 5]],
    ] as const) {
      const comm = await NcclComm.init({ rank, worldSize: 2, device: 0, id, timeoutMs: 5000 });
      const x = Buf.f32([1, 2, 3, 4, 5]);
      const out = await comm.reduceScatter(x, "sum");
      expect(out.shape).toEqual([want.length]);
      expect(out.values()).toEqual(want);
      expect(fake.last()).toContain("ncclReduceScatter count=3 dtype=7 op=0");
      await comm.destroy();
    }
  });

  it("CPU tensors (the transforms' control messages) are staged through device copies", async () => {
    const comm = await one();
    const flag = tensor([0, 1, 2.5], [3]);
    await comm.allReduce(flag, "max");
    expect(fake.last()).toContain("ncclAllReduce count=3");
    expect(flag.toArray()).toEqual([0, 1, 2.5]); // a world of one: the values come back unchanged
    const loss = tensor([0.25], [1], { dtype: "f64" });
    await comm.broadcast({ loss }, 0);
    expect(fake.last()).toContain("ncclBroadcast");
    expect(loss.toArray()).toEqual([0.25]);
    const all = await comm.allGather(tensor([7, 8], [2], { dtype: "i32" }));
    expect(all).toBeInstanceOf(Tensor);
    expect(all.dtype).toBe("i32");
    expect(all.toArray()).toEqual([7, 8]);
    const part = await comm.reduceScatter(tensor([1, 2, 3], [3]), "sum");
    expect(part).toBeInstanceOf(Tensor);
    expect(part.toArray()).toEqual([1, 2, 3]);
    for (const t of [flag, loss, all, part]) t.dispose();
    await comm.destroy();
  });

  it("bad arguments are named", async () => {
    const comm = await one();
    const cpu = tensor([1, 2], [2]);
    // CPU and device leaves in one call: refused, naming the fix
    await expect(comm.allReduce([cpu, Buf.f32([1])] as never, "sum")).rejects.toThrow(
      /argument x\[0\] must be a tensor on cuda:0, got a CPU tensor .*use \.to\("cuda:0"\) or a CPU comm/,
    );
    const other = new Buf([2], "f32", 1);
    await expect(comm.allReduce(other, "sum")).rejects.toThrow(
      "argument x is on cuda:1, but rank 0's communicator runs on cuda:0",
    );
    await expect(comm.allReduce(new Buf([2], "u8", 0), "sum")).rejects.toThrow("has dtype u8, expected one of");
    await expect(comm.allReduce(Buf.f32([1]), "mean" as never)).rejects.toThrow('argument op must be one of "sum"');
    await expect(comm.broadcast(Buf.f32([1]), 1)).rejects.toThrow(
      "argument root must be an integer rank in [0, 0], got 1",
    );
    await expect(one({ id: new Uint8Array(12) })).rejects.toThrow("option id must be the 128-byte Uint8Array");
    await expect(one({ device: 5 })).rejects.toThrow("option device is 5, but this machine has 2 CUDA device(s)");
    await expect(one({ rank: 1 })).rejects.toThrow("option rank must be an integer in [0, 0], got 1");
    cpu.dispose();
    await comm.destroy();
  });

  it("init that never completes times out and aborts; init that fails names NCCL's error and the id it got", async () => {
    fake.set(0, 1);
    const e = await one({ timeoutMs: 100 }).catch((x) => x);
    expect(e).toBeInstanceOf(CommError);
    expect(e.message).toMatch(/rank 0 of 1 \(cuda:0\): not every rank joined within 100 ms/);
    expect(e.reason).toBe("timeout");
    expect(fake.get(ABORTS)).toBe(1);
    fake.set(0, 2);
    const id = ncclUniqueId();
    const f = await one({ id }).catch((x) => x);
    const hex = Array.from(id.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(f.message).toContain(
      `NCCL init failed: ncclInvalidUsage: invalid usage (NCCL: fake: id ${hex} rank 0 of 1)`,
    );
  });

  it("an async error aborts the communicator, names the rank and NCCL's words, and breaks later calls", async () => {
    const comm = await one();
    fake.set(1, 6);
    const x = Buf.f32([1, 2]);
    const e = await comm.allReduce(x, "sum").catch((y) => y);
    expect(e).toBeInstanceOf(CommError);
    expect(e.message).toMatch(
      /allReduce: rank 0 of 1 \(cuda:0, thread \d+\): NCCL reported ncclRemoteError: remote process exited or there was a network error .* in allReduce \(call #1\); the communicator was aborted/,
    );
    expect([e.reason, e.failedRank]).toEqual(["failed", 0]);
    expect(fake.get(ABORTS)).toBe(1);
    await expect(comm.barrier()).rejects.toThrow(/barrier: this NcclComm is broken by an earlier failure/);
    await comm.destroy();
    expect(fake.get(ABORTS)).toBe(1); // a broken comm is aborted once, never finalized
    expect(fake.get(FINALIZES)).toBe(0);
  });

  it("a stream that never finishes: the deadline, and an AbortSignal, end the wait with an abort", async () => {
    fake.set(2, 1);
    const comm = await one();
    const t0 = performance.now();
    const e = await comm.allReduce(Buf.f32([1]), "sum", { timeoutMs: 150 }).catch((x) => x);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.message).toMatch(/rank 0 of 1 .* timed out after 150 ms in allReduce \(call #1\)/);
    expect(e.reason).toBe("timeout");
    expect(fake.get(ABORTS)).toBe(1);
    const c2 = await one();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("user stop")), 50);
    const a = await c2.broadcast(Buf.f32([1]), 0, { signal: ac.signal }).catch((x) => x);
    expect(a.message).toMatch(/aborted broadcast \(call #1\): Error: user stop/);
    expect(a.reason).toBe("aborted");
    await comm.destroy();
    await c2.destroy();
  });

  it("bootstrap over a TcpStore: rank 1 uses rank 0's id; a rank's failure reaches its peer through the store", async () => {
    const s0 = await TcpStore.connect({ host: "127.0.0.1", port: 0, rank: 0, worldSize: 2, timeoutMs: 5000 });
    const s1 = await TcpStore.connect({ host: "127.0.0.1", port: s0.port, rank: 1, worldSize: 2, timeoutMs: 5000 });
    const [c0, c1] = await Promise.all([
      NcclComm.bootstrap({ rank: 0, worldSize: 2, device: 0, via: s0, timeoutMs: 5000 }),
      NcclComm.bootstrap({ rank: 1, worldSize: 2, device: 1, via: s1, timeoutMs: 5000 }),
    ]);
    fake.set(2, 1); // no stream finishes...
    fake.set(1, 6); // ...and rank 1 gets a remote error
    fake.set(4, 2);
    const x0 = Buf.f32([1]);
    const x1 = Buf.f32([1], 1);
    const [e0, e1] = await Promise.all([
      c0.allReduce(x0, "sum").catch((e) => e),
      c1.allReduce(x1, "sum").catch((e) => e),
    ]);
    expect(e1.message).toMatch(/rank 1 of 2 \(cuda:1, .*NCCL reported ncclRemoteError/);
    expect(e0).toBeInstanceOf(CommError);
    expect(e0.message).toMatch(/^plait: rank 1 reported: allReduce: rank 1 of 2 \(cuda:1/);
    expect([e0.failedRank, e0.reason]).toEqual([1, "failed"]);
    await c0.destroy();
    await c1.destroy();
    await s1.close();
    await s0.close();
  });

  it("a rank that times out tells its peers, naming no culprit (failedRank -1), and they stop too", async () => {
    const s0 = await TcpStore.connect({ host: "127.0.0.1", port: 0, rank: 0, worldSize: 2, timeoutMs: 5000 });
    const s1 = await TcpStore.connect({ host: "127.0.0.1", port: s0.port, rank: 1, worldSize: 2, timeoutMs: 5000 });
    const [c0, c1] = await Promise.all([
      NcclComm.bootstrap({ rank: 0, worldSize: 2, device: 0, via: s0, timeoutMs: 5000 }),
      NcclComm.bootstrap({ rank: 1, worldSize: 2, device: 1, via: s1, timeoutMs: 5000 }),
    ]);
    fake.set(2, 1);
    const t0 = performance.now();
    const [e0, e1] = await Promise.all([
      c0.allReduce(Buf.f32([1]), "sum", { timeoutMs: 100 }).catch((e) => e),
      c1.allReduce(Buf.f32([1], 1), "sum", { timeoutMs: 5000 }).catch((e) => e),
    ]);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect([e0.reason, e0.failedRank]).toEqual(["timeout", -1]);
    expect(e1.message).toMatch(/^plait: rank 0 reported: allReduce: rank 0 of 2 .* timed out after 100 ms/);
    expect([e1.reason, e1.failedRank]).toEqual(["timeout", -1]);
    expect(fake.get(ABORTS)).toBe(2);
    await c0.destroy();
    await c1.destroy();
    await s1.close();
    await s0.close();
  });

  it('bootstrap "env" serves the store at MASTER_ADDR:MASTER_PORT and closes it in destroy()', async () => {
    const free = await TcpStore.connect({ host: "127.0.0.1", port: 0, rank: 0, worldSize: 1 });
    const port = free.port;
    await free.close();
    const saved = { ...process.env };
    Object.assign(process.env, { MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), RANK: "0", WORLD_SIZE: "1" });
    try {
      const comm = await NcclComm.bootstrap({ rank: 0, worldSize: 1, device: 0, timeoutMs: 5000 });
      await expect(TcpStore.connect({ host: "127.0.0.1", port, rank: 0, worldSize: 1 })).rejects.toThrow("EADDRINUSE");
      await comm.destroy();
      const again = await TcpStore.connect({ host: "127.0.0.1", port, rank: 0, worldSize: 1 });
      await again.close();
      await expect(NcclComm.bootstrap({ rank: 1, worldSize: 2, device: 0, timeoutMs: 5000 })).rejects.toThrow(
        "options rank 1 and worldSize 2 disagree with option via's rank 0 of 1",
      );
      // the store it opened for that is closed again
      const third = await TcpStore.connect({ host: "127.0.0.1", port, rank: 0, worldSize: 1 });
      await third.close();
    } finally {
      process.env = saved;
    }
  });

  it("threads: every spawn() rank gets rank 0's id over its ShmComm and bootstraps on it", async () => {
    const { spawn } = await import("../src/launch/index.ts");
    const out = await spawn<{ rank: number; id: number[]; library: string }>(
      new URL("./fixtures/nccl-threads.mjs", import.meta.url),
      "main",
      { devices: 3, timeoutMs: 30_000 },
    );
    expect(out.map((r) => r.rank)).toEqual([0, 1, 2]);
    expect(new Set(out.map((r) => r.id.join(","))).size).toBe(1);
    expect(out[0].id.slice(1)).toEqual([6, 11, 16]);
    expect(out.every((r) => r.library === "2.30.7")).toBe(true);
  });

  it.skipIf(skipMpi())("MPI processes: rank 0's id reaches every process over MpiComm and each bootstraps", () => {
    const fixture = fileURLToPath(new URL("./fixtures/nccl-mpi.mjs", import.meta.url));
    const out = execFileSync(
      "mpirun",
      ["--allow-run-as-root", "--oversubscribe", "-np", "2", process.execPath, fixture],
      { encoding: "utf8", timeout: 60_000, env: { ...process.env, PLAIT_THREADS: "1" } },
    );
    const results = out
      .split("\n")
      .filter((l) => l.startsWith("RESULT "))
      .map((l) => JSON.parse(l.slice(7)))
      .sort((a, b) => a.rank - b.rank);
    expect(results.map((r) => [r.rank, r.worldSize])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(results[1].id).toEqual(results[0].id);
  });

  it("shareUniqueId over a Comm broadcasts rank 0's bytes and checks their length", async () => {
    const id = await shareUniqueId(localComm(), { make: () => new Uint8Array(128).fill(7) });
    expect(Array.from(id.subarray(0, 3))).toEqual([7, 7, 7]);
    await expect(shareUniqueId(localComm(), { make: () => new Uint8Array(3) })).rejects.toThrow(
      "the unique id from ncclGetUniqueId has 3 bytes, expected 128",
    );
  });
});
