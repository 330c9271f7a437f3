// Cross-runtime check of the system BLAS path (ffi/blas.ts), run by scripts/compat.mjs on Node, Bun
// and Deno with --allow-ffi ("in-use"), and on Deno without it ("no-ffi": auto falls back to the WASM
// GEMM and says why; an explicit library fails with that reason). Prints "N passed, N failed".
// Where no BLAS is installed, "in-use" prints that it skipped and why (fails with PLAIT_REQUIRE_BLAS=1).
import * as plait from "plait";

const runtimeName = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const mode = process.argv[2] ?? "in-use";
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
function randoms(n, seed, Typed = Float32Array) {
  const out = new Typed(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
/** op(a)·op(b) (+ bias) (+ c0) against a float64 loop within 2·(k+4)·u·Σ|terms|. */
function expectProduct(what, c, a, b, { transA = false, transB = false, bias, c0 } = {}) {
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const n = transB ? b.shape[0] : b.shape[1];
  const [av, bv, cv] = [a.toArray(), b.toArray(), c.toArray()];
  const u = c.dtype === "f64" ? 2 ** -53 : 2 ** -24;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = (bias?.[j] ?? 0) + (c0?.[i * n + j] ?? 0);
      let t = Math.abs(bias?.[j] ?? 0) + Math.abs(c0?.[i * n + j] ?? 0);
      for (let p = 0; p < k; p++) {
        const x = av[transA ? p * m + i : i * k + p] * bv[transB ? j * k + p : p * n + j];
        s += x;
        t += Math.abs(x);
      }
      const got = cv[i * n + j];
      assert(Math.abs(got - s) <= 2 * (k + 4) * u * t, `${what}: C[${i},${j}] = ${got}, reference ${s}`);
    }
  }
}

const status = plait.blasStatus();
if (mode === "in-use" && !status.usable && process.env.PLAIT_REQUIRE_BLAS !== "1") {
  console.log(`skip ${runtimeName} blas: no system BLAS here (${status.reason?.split("\n")[0]})`);
  console.log(`${runtimeName} blas: 0 passed, 0 failed (skipped; install: apt-get install -y libopenblas0-pthread)`);
  process.exit(0);
}

if (mode === "in-use") {
  await check("auto finds the BLAS and matmul uses it for f32 and f64", () => {
    assert(status.inUse, `not in use: ${status.reason}`);
    assert(status.path && status.dtypes.join() === "f32,f64", JSON.stringify(status));
  });

  await check("f32 and f64 products, every layout, bias and accumulate, against a float64 loop", () => {
    for (const dtype of ["f32", "f64"]) {
      const Arr = dtype === "f64" ? Float64Array : Float32Array;
      for (const [transA, transB] of [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ]) {
        plait.scope(() => {
          const [m, n, k] = [37, 29, 130];
          const a = plait.tensor(randoms(m * k, 1, Arr), transA ? [k, m] : [m, k]);
          const b = plait.tensor(randoms(k * n, 2, Arr), transB ? [n, k] : [k, n]);
          const biasValues = randoms(n, 3, Arr);
          const bias = plait.tensor(biasValues, [n]);
          const what = `${dtype} ${transA} ${transB}`;
          expectProduct(what, plait.matmul(a, b, { transA, transB, bias }), a, b, { transA, transB, bias: biasValues });
          const out = plait.tensor(randoms(m * n, 4, Arr), [m, n]);
          const c0 = out.toArray();
          plait.core.matmul(a, b, { transA, transB, out, accumulate: true }); // WASM reference path
          const wasm = out.toArray();
          expectProduct(`${what} WASM accumulate`, out, a, b, { transA, transB, c0 });
          assert(wasm.length === m * n, "size");
        });
      }
    }
  });

  await check("operands reach C in place: memchr sees base + tensor.ptr (zero copy)", async () => {
    // plait's own FFI loader, from the copy of plait this runtime resolves (src/ or dist/src/)
    const index = import.meta.resolve("plait");
    const native = new URL(index.endsWith(".ts") ? "../ffi/native.ts" : "../ffi/native.js", index);
    const { openNative, addressOf } = await import(native.href);
    const memchr = openNative("libc.so.6").func("uintptr_t memchr(const void *s, int c, size_t n)");
    plait.scope(() => {
      const t = plait.tensor(randoms(4096, 5), [64, 64]);
      const { memory } = plait.runtime();
      const bytes = new Uint8Array(memory.buffer, t.ptr, t.byteLength);
      bytes.fill(1);
      bytes[bytes.length - 1] = 7;
      const base = addressOf(new Uint8Array(memory.buffer, 0, 1));
      const got = BigInt(memchr(new Float32Array(memory.buffer, t.ptr, t.size), 7, t.byteLength));
      const want = base + BigInt(t.ptr + t.byteLength - 1);
      assert(got === want, `memchr returned ${got}, expected ${want}`);
    });
  });

  await check("two ranks call the BLAS at once, each product matching the WASM GEMM", async () => {
    const results = await plait.spawn(new URL("../fixtures/blas-ranks.mjs", import.meta.url), "main", {
      devices: 2,
      args: { iters: 60 },
    });
    for (const r of results) {
      assert(r.inUse && r.products === 60, JSON.stringify(r));
      assert(r.worst <= 1, `rank ${r.rank}: worst |BLAS − WASM| / bound = ${r.worst}`);
    }
  });
} else if (mode === "no-ffi") {
  await check("auto falls back to the WASM GEMM and says why (--allow-ffi)", () =>
    plait.scope(() => {
      assert(!status.inUse && /--allow-ffi/.test(status.reason ?? ""), JSON.stringify(status));
      const a = plait.tensor(randoms(40 * 50, 1), [40, 50]);
      const b = plait.tensor(randoms(50 * 30, 2), [50, 30]);
      const c = plait.matmul(a, b).toArray();
      const w = plait.core.matmul(a, b).toArray();
      assert(
        c.every((v, i) => Object.is(v, w[i])),
        "matmul is not the WASM GEMM's result",
      );
    }),
  );

  await check("an explicit library fails with that reason, naming it", () =>
    plait.scope(() => {
      plait.configure({ blas: "libopenblas.so.0" });
      let message = "";
      try {
        plait.matmul(plait.tensor([[1]]), plait.tensor([[2]]));
      } catch (e) {
        message = e.message;
      }
      plait.configure({ blas: "auto" });
      assert(/plait: BLAS: .*--allow-ffi/.test(message), `got ${JSON.stringify(message)}`);
    }),
  );
} else throw new Error(`unknown mode ${mode}`);

let failed = 0;
for (const [name, ok, e] of results) {
  console.log(`${ok ? "ok  " : "FAIL"} ${runtimeName} blas: ${name}`);
  if (!ok) {
    failed++;
    console.log(`     ${e?.stack ?? e}`);
  }
}
console.log(`${runtimeName} blas (${mode}): ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
