// Cross-runtime smoke run of the launchers and the shm collectives, the same under Node (dist/),
// Deno and Bun (src/): this script launches itself on 2 ranks (script launcher), checks a few
// collectives on every rank, then rank 0 runs spawn() (a good run and a failing one). Prints
// "N passed, N failed" and exits non-zero on failure. Run by scripts/compat.mjs.
import * as plait from "plait";

const runtimeName = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const ctx = await plait.launch({ devices: 2, timeoutMs: 20_000 });
const { comm, rank } = ctx;
const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push([name, true]);
  } catch (e) {
    results.push([name, false, e]);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

await check("allReduce sum, small and large", async () => {
  for (const n of [3, 1023, 100_003]) {
    const x = plait.tensor(Float32Array.from({ length: n }, (_, i) => i + rank));
    await comm.allReduce(x, "sum");
    const v = x.data();
    for (let i = 0; i < n; i++) assert(v[i] === 2 * i + 1, `n=${n}: element ${i} is ${v[i]}`);
    x.dispose();
  }
});

await check("allReduce avg in bf16 and max in f16", async () => {
  const a = plait.tensor([1, 2, 3 + rank], [3], { dtype: "bf16" });
  await comm.allReduce(a, "avg");
  assert(a.toArray().join() === "1,2,3.5", `bf16 avg: ${a.toArray()}`);
  const b = plait.tensor([rank, -rank], [2], { dtype: "f16" });
  await comm.allReduce(b, "max");
  assert(b.toArray().join() === "1,0", `f16 max: ${b.toArray()}`);
});

await check("broadcast, allGather, reduceScatter, barrier", async () => {
  const x = plait.tensor([rank, rank]);
  await comm.broadcast(x, 1);
  assert(x.toArray().join() === "1,1", `broadcast: ${x.toArray()}`);
  const g = await comm.allGather(plait.tensor([rank * 10]));
  assert(g.toArray().join() === "0,10", `allGather: ${g.toArray()}`);
  const s = await comm.reduceScatter(plait.tensor([1, 2, 3]), "sum");
  assert(s.toArray().join() === (rank === 0 ? "2,4" : "6"), `reduceScatter: ${s.toArray()}`);
  await comm.barrier();
});

await check("every rank sees rank 0's argv and execArgv", async () => {
  const seen = JSON.stringify([process.argv, process.execArgv, globalThis.Deno?.args ?? null]);
  let h = 0x811c9dc5;
  for (let i = 0; i < seen.length; i++) h = Math.imul(h ^ seen.charCodeAt(i), 0x01000193);
  const all = await comm.allGather(plait.tensor([h | 0], [1], { dtype: "i32" }));
  const [h0, h1] = all.toArray();
  assert(h0 === h1, `rank ${rank} sees ${seen}, which differs from the other rank's`);
  assert(process.argv[1].endsWith("launch.mjs"), `argv[1] is ${process.argv[1]}`);
});

await check("a mismatch is detected, not reduced", async () => {
  // on a world of its own, so that the mismatch does not poison this one
  if (rank !== 0) return;
  const res = await plait.spawn(new URL("../fixtures/faults.mjs", import.meta.url), "main", {
    devices: 2,
    args: { scenario: "end-early", k: 1 },
  });
  assert(res[0].reason === "ended" && res[0].failedRank === 1, JSON.stringify(res));
});

if (rank === 0) {
  await check("spawn runs a function on every rank", async () => {
    const res = await plait.spawn(new URL("../fixtures/spawn-smoke.mjs", import.meta.url), "main", {
      devices: 2,
      args: "hi",
    });
    assert(res.length === 2 && res[1].rank === 1 && res[1].sum.join() === "3,20", JSON.stringify(res));
  });
  await check("spawn rejects with the failing rank's error, promptly", async () => {
    const t0 = performance.now();
    const workers = plait.liveWorkers(); // this script's own rank 1 counts too
    let error;
    try {
      await plait.spawn(new URL("../fixtures/faults.mjs", import.meta.url), "main", {
        devices: 3,
        args: { scenario: "throw-during", k: 2 },
      });
    } catch (e) {
      error = e;
    }
    assert(error?.message === "plait: spawn: rank 2 failed: Error: boom on rank 2", `got ${error?.message}`);
    assert(performance.now() - t0 < 10_000, "took too long");
    assert(plait.liveWorkers() === workers, `${plait.liveWorkers() - workers} spawned workers left`);
  });
  await check("a stalled rank is named and stopped, even when its peers catch the timeout", async () => {
    const t0 = performance.now();
    let error;
    try {
      await plait.spawn(new URL("../fixtures/faults.mjs", import.meta.url), "main", {
        devices: 2,
        args: { scenario: "stall-caught", k: 1, timeoutMs: 500 },
      });
    } catch (e) {
      error = e;
    }
    assert(error?.failedRank === 1 && error?.reason === "timeout", `got ${error?.message}`);
    assert(error.message.startsWith("plait: spawn: rank 1 did not arrive in allReduce"), error.message);
    assert(performance.now() - t0 < 10_000, "took too long (the stalled rank sleeps 60 s)");
  });
  await check("a failed world's memory is reused (Node, Bun) or kept (Deno), never overwritten", async () => {
    // rank 0 is terminated while computing, its pool thread waiting for work. Node and Bun stop
    // both, and their memory is reused; Deno reports the exit while a busy worker runs on, so
    // there the failed world's memory stays reserved.
    const memory = new URL("../fixtures/memory.mjs", import.meta.url);
    const saved = process.env.PLAIT_THREADS;
    process.env.PLAIT_THREADS = "2";
    const fail = () =>
      plait.spawn(memory, "hold", { devices: 2, args: { mib: 32, failRank: 1, busyRank: 0 } }).then(
        () => assert(false, "spawn resolved"),
        (e) => assert(e.failedRank === 1, `failed rank ${e.failedRank}: ${e.message}`),
      );
    try {
      await fail();
      const bytes = plait.runtime().memory.buffer.byteLength;
      for (let i = 0; i < 2; i++) await fail();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // a left-over pool thread's check
      const after = plait.runtime().memory.buffer.byteLength;
      if (runtimeName === "deno") assert(after >= bytes + 2 * 64 * 2 ** 20, `kept ${after - bytes} bytes`);
      else assert(after === bytes, `memory grew from ${bytes} to ${after} bytes`);
      const x = plait.full([8 << 20], 7);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert(
        x.toArray().every((v) => v === 7),
        "memory written by a thread that was given up on",
      );
      x.dispose();
    } finally {
      if (saved === undefined) delete process.env.PLAIT_THREADS;
      else process.env.PLAIT_THREADS = saved;
    }
  });
}

const failed = results.filter((r) => !r[1]);
const total = plait.tensor([results.length, failed.length], [2], { dtype: "i32" });
await comm.allReduce(total, "sum");
for (const [name, ok, e] of results) {
  if (!ok || rank === 0)
    console.log(`${ok ? "ok  " : "FAIL"} ${runtimeName} rank ${rank}: ${name}${ok ? "" : `\n     ${e?.stack ?? e}`}`);
}
await ctx.join();
if (rank === 0) {
  const [n, bad] = total.toArray();
  console.log(`${runtimeName} launch: ${n - bad} passed, ${bad} failed`);
  plait.runtime().pool.close();
  if (bad) process.exit(1);
}
