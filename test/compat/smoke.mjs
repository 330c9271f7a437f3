// The cross-runtime smoke suite: the same checks under Node (dist/), Deno and Bun (src/),
// importing the package by name. Run by scripts/compat.mjs; prints "N passed, N failed".
import * as plait from "plait";

const runtimeName = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
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
/** A batch of 32 random 8-feature rows with labels 0, 1, 2, 0, …, for the MLP [8, 16, 3]. */
function batch(seed) {
  const x = plait.tensor(randoms(32 * 8, seed), [32, 8]);
  const y = plait.tensor(
    new Int32Array(32).map((_, i) => i % 3),
    [32],
    { dtype: "i32" },
  );
  return { x, y };
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

await check("tensor round trip and dispose", () => {
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

await check("kernel variant fits the runtime", () => {
  const { variant } = plait.runtime();
  // Deno and Bun validate relaxed SIMD, so the relaxed build is what runs (and is checked) there.
  const want = process.env.PLAIT_SIMD || (runtimeName === "node" ? "simd" : "relaxed");
  assert(variant === want, `variant ${variant}, expected ${want}`);
});

await check("threaded fill over the shared memory", () => {
  const n = 1 << 19;
  const t = plait.full([n], 0.5);
  const v = t.data();
  for (let i = 0; i < n; i++) assert(v[i] === 0.5, `element ${i} is ${v[i]}`);
  t.dispose();
});

await check("matmul (f32, the GEMM build this runtime runs) against a float64 loop", () => {
  const [m, n, k] = [67, 45, 129];
  const a = randoms(m * k, 1);
  const b = randoms(k * n, 2);
  const c = plait.scope(() => plait.matmul(plait.tensor(a, [m, k]), plait.tensor(b, [k, n])).toFloat32Array());
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = 0;
      let mag = 0;
      for (let p = 0; p < k; p++) {
        ref += a[i * k + p] * b[p * n + j];
        mag += Math.abs(a[i * k + p] * b[p * n + j]);
      }
      const bound = 2 * (k + 4) * 2 ** -24 * mag;
      assert(Math.abs(c[i * n + j] - ref) <= bound, `c[${i},${j}] = ${c[i * n + j]}, reference ${ref}`);
    }
  }
});

await check("bf16 and f16 casts round to nearest even", () => {
  const x = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 65504, 1e-8, Number.POSITIVE_INFINITY]);
  const bf = Array.from(plait.toBF16(x));
  assert(
    bf.join() === [0x3f80, 0x3f80, 0x3f82, 0x4780, 0x322c, 0x7f80].join(),
    `bf16 ${bf.map((v) => v.toString(16))}`,
  );
  const y = new Float32Array([1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 1e-8, Number.POSITIVE_INFINITY]);
  const h = Array.from(plait.toF16(y));
  assert(h.join() === [0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x0000, 0x7c00].join(), `f16 ${h.map((v) => v.toString(16))}`);
  const back = plait.fromF16(new Uint16Array([0x3c01, 0x0001]));
  assert(back[0] === 1 + 2 ** -10 && back[1] === 2 ** -24, `f16 widening ${back}`);
});

await check("a training step lowers the loss (autodiff, optimizer, train)", () => {
  const model = plait.mlp([8, 16, 3]);
  const { x, y } = batch(3);
  const lossOf = plait.valueAndGrad((p, b) => plait.softmaxCrossEntropy(model.apply(p, b.x), b.y));
  const params = model.init(new plait.Rng(0));
  const opt = plait.sgd({ lr: 0.5 });
  let state = opt.init(params);
  let first;
  let last;
  for (let i = 0; i < 30; i++) {
    const { loss, grads } = lossOf(params, { x, y });
    state = opt.update(params, grads, state);
    for (const g of plait.treeLeaves(grads)) g.dispose();
    first ??= loss;
    last = loss;
  }
  assert(last < first * 0.7, `loss ${first} → ${last}`);
});

// 16-mixed: the weights' compute copies are HalfCopy tensors (a subclass with private fields and
// an overridden `ptr` getter), cast when first read; the loss scaler runs through train.
await check("a 16-mixed training run lowers the loss (half compute copies, loss scaling)", async () => {
  const model = plait.mlp([8, 16, 3]);
  const step = plait.withPrecision(
    plait.valueAndGrad((p, b) => plait.softmaxCrossEntropy(model.apply(p, b.x), b.y)),
    "16-mixed",
  );
  const trainer = plait.train(step, plait.sgd({ lr: 0.5 }));
  const data = batch(5);
  let state = await trainer.init(model.init(new plait.Rng(0)));
  const losses = [];
  for (let i = 0; i < 30; i++) {
    const r = await trainer(state, data);
    state = r.state;
    losses.push(r.out.loss);
  }
  assert(losses.every(Number.isFinite), `losses ${losses}`);
  assert(losses.at(-1) < losses[0] * 0.7, `loss ${losses[0]} → ${losses.at(-1)}`);
});

await check("scopes free intermediates", () => {
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
