// The cross-runtime smoke suite: the same checks under Node (dist/), Deno and Bun (src/),
// importing the package by name. Run by scripts/compat.mjs; prints "N passed, N failed".
import * as plait from "plait";

const runtimeName = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const results = [];
function check(name, fn) {
  try {
    fn();
    results.push([name, true]);
  } catch (e) {
    results.push([name, false, e]);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}
/** Deterministic pseudo-random floats in [-1, 1). */
function randoms(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

check("tensor round trip and dispose", () => {
  const t = plait.tensor([1, 2, 3, 4], [2, 2]);
  assert(t.toArray().join() === "1,2,3,4", "values");
  t.dispose();
  let threw = false;
  try {
    t.toArray();
  } catch {
    threw = true;
  }
  assert(threw, "use after dispose must throw");
});

check("kernel variant fits the runtime", () => {
  const { variant } = plait.runtime();
  // Deno and Bun validate relaxed SIMD, so the relaxed build is what runs (and is checked) there.
  const want = process.env.PLAIT_SIMD || (runtimeName === "node" ? "simd" : "relaxed");
  assert(variant === want, `variant ${variant}, expected ${want}`);
});

check("threaded fill over the shared memory", () => {
  const n = 1 << 19;
  const t = plait.full([n], 0.5);
  const v = t.data();
  for (let i = 0; i < n; i++) assert(v[i] === 0.5, `element ${i} is ${v[i]}`);
  t.dispose();
});

check("scopes free intermediates", () => {
  const arena = plait.runtime().arena;
  const before = arena.bytesInUse;
  plait.scope(() => {
    plait.zeros([1000]);
  });
  assert(arena.bytesInUse === before, "leak");
});

const failed = results.filter((r) => !r[1]);
for (const [name, ok, e] of results)
  console.log(`${ok ? "ok  " : "FAIL"} ${runtimeName}: ${name}${ok ? "" : `\n     ${e?.stack ?? e}`}`);
console.log(`${runtimeName}: ${results.length - failed.length} passed, ${failed.length} failed`);
plait.runtime().pool.close();
if (failed.length) process.exit(1);
