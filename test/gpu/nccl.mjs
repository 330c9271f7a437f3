// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// NcclComm on a real GPU, without vitest: node test/gpu/nccl.mjs <tests.json>. Run by
// test/gpu/run.sh. Each case records { name, ok, ms, error? }; the exit status is 1 when any failed.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { loadNccl, ncclUniqueId } from "../../dist/ffi/nccl.js";
import { localComm } from "../../dist/src/comm/local.js";
import { NcclComm, shareUniqueId } from "../../dist/src/comm/nccl.js";
import { TcpStore } from "../../dist/src/comm/rendezvous.js";
import { Buf, fromBf16, toBf16 } from "./device.mjs";
import { cases } from "./harness.mjs";

const { assert, test, finish } = cases();
const file = process.argv[2] ?? "tests.json";
const f32 = (buf) => Array.from(new Float32Array(buf.download().buffer));
const rejects = async (p, re) => {
  try {
    await p;
  } catch (e) {
    assert(re.test(e.message), `error ${JSON.stringify(e.message)} matches ${re}`);
    return e.message;
  }
  throw new Error(`expected a rejection matching ${re}`);
};

let comm;
await test("loadNccl: version and a 128-byte unique id", () => {
  const nccl = loadNccl();
  const id = ncclUniqueId(nccl);
  assert(id.length === 128 && id.some((b) => b !== 0), "id has 128 bytes, not all zero");
  return { path: nccl.path, version: nccl.version };
});
await test("bootstrap over a TcpStore (world of 1)", async () => {
  const store = await TcpStore.connect({ host: "127.0.0.1", port: 0, rank: 0, worldSize: 1, timeoutMs: 10_000 });
  const c = await NcclComm.bootstrap({ rank: 0, worldSize: 1, device: 0, via: store, timeoutMs: 30_000 });
  await c.barrier();
  await c.destroy();
  await store.close();
});
await test("bootstrap over a Comm (localComm, the path ShmComm and MpiComm take)", async () => {
  const id = await shareUniqueId(localComm());
  assert(id.length === 128, "128 bytes");
  comm = await NcclComm.bootstrap({ rank: 0, worldSize: 1, device: 0, via: localComm(), timeoutMs: 30_000 });
  return { library: comm.library };
});
await test("allReduce f32 sum/avg/max in place", async () => {
  const data = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5 - 7);
  const x = new Buf([1000], "f32", 0).upload(data);
  for (const op of ["sum", "avg", "max", "min"]) {
    await comm.allReduce(x, op);
    assert(
      f32(x).every((v, i) => v === data[i]),
      `${op} over one rank leaves x as it was`,
    );
  }
  x.dispose();
});
await test("allReduce bf16 and a tree of two leaves in one group", async () => {
  const a = new Buf([7], "bf16", 0).upload(toBf16(Float32Array.from([1, 2, 3, 4, 5, 6, 7])));
  const b = new Buf([3], "f32", 0).upload(Float32Array.from([9, 8, 7]));
  const tree = { a, b: [b] };
  assert((await comm.allReduce(tree, "sum")) === tree, "resolves to x");
  assert(fromBf16(new Uint16Array(a.download().buffer))[6] === 7, "bf16 value kept");
  assert(f32(b)[0] === 9, "f32 leaf kept");
  a.dispose();
  b.dispose();
});
await test("broadcast, allGather, reduceScatter (world of 1), barrier", async () => {
  const x = new Buf([5], "f32", 0).upload(Float32Array.from([1, 2, 3, 4, 5]));
  await comm.broadcast(x, 0);
  const g = await comm.allGather(x);
  assert(g.size === 5 && f32(g)[4] === 5, "allGather of one rank is x");
  const s = await comm.reduceScatter(x, "sum");
  assert(s.size === 5 && f32(s)[2] === 3, "reduceScatter of one rank is x");
  await comm.barrier();
  for (const t of [x, g, s]) t.dispose();
});
await test("bad input: a wrong device, a wrong dtype, a fired signal", async () => {
  const x = new Buf([2], "u8", 0);
  await rejects(comm.allReduce(x, "sum"), /argument x has dtype u8, expected one of/);
  await rejects(
    comm.allReduce({ ...x, deviceIndex: 3, ptr: x.ptr, dtype: "f32" }, "sum"),
    /is on cuda:3, but rank 0's communicator runs on cuda:0/,
  );
  const ac = new AbortController();
  ac.abort(new Error("stop"));
  const y = new Buf([2], "f32", 0);
  // a fired signal rejects before anything is queued, and breaks nothing
  await rejects(comm.allReduce(y, "sum", { signal: ac.signal }), /aborted allReduce .*stop/);
  x.dispose();
  y.dispose();
});
await test("abort(): later collectives reject naming the cause; destroy() still works", async () => {
  const x = new Buf([2], "f32", 0);
  comm.abort("test");
  await rejects(comm.allReduce(x, "sum"), /broken by an earlier failure .*rank 0 of 1 .*aborted: test/);
  await comm.destroy();
  x.dispose();
});

// two processes on one GPU: NCCL either runs them or refuses (duplicate GPU); neither may hang
async function port() {
  return new Promise((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
}
async function ranks(mode) {
  const p = await port();
  const script = fileURLToPath(new URL("./nccl-rank.mjs", import.meta.url));
  const one = (rank) =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [script], {
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: "2",
          MASTER_ADDR: "127.0.0.1",
          MASTER_PORT: String(p),
          NCCL_MODE: mode,
        },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let text = "";
      child.stdout.on("data", (d) => {
        text += d;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        const line = text.split("\n").find((l) => l.startsWith("{"));
        resolve({ code, ...(line ? JSON.parse(line) : { ok: false, error: "no output (killed after 60 s?)" }) });
      });
    });
  return Promise.all([one(0), one(1)]);
}
await test("two processes, one GPU, TCP store bootstrap: sum or a named refusal, no hang", async () => {
  const rs = await ranks("sum");
  for (const r of rs) {
    if (r.ok)
      assert(
        r.values.every((v) => v === 3),
        `rank ${r.rank} sum is 3`,
      );
    else
      assert(/rank \d/.test(r.error) && /nccl\w+/.test(r.error), `rank ${r.rank} error names a rank and NCCL's error`);
  }
  return rs;
});
await test("two processes, rank 1 never calls: rank 0 times out and aborts", async () => {
  const rs = await ranks("skip");
  const zero = rs.find((r) => r.rank === 0);
  if (zero.ok) throw new Error("rank 0 finished an allReduce rank 1 never joined");
  assert(zero.reason === "timeout" || zero.reason === "failed", `rank 0 rejected (${zero.reason}): ${zero.error}`);
  return rs;
});

finish(file);
