// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// What the GPU scripts share (test/gpu/nccl.mjs, train.mjs, train-rank.mjs): the case recorder,
// seeded values (the LCG of test/gemm-reference.ts) and the MNIST MLP of the training cases.
import { writeFileSync } from "node:fs";
import { matmul, relu, softmaxCrossEntropy, tensor } from "../../dist/src/index.js";

/**
 * A run of named cases: `test` records { name, ok, ms, info?, error? } and prints a line;
 * `finish(file, extra)` writes { ...extra, results } to `file` and exits 1 when any failed.
 */
export function cases() {
  const results = [];
  return {
    results,
    assert(cond, what) {
      if (!cond) throw new Error(`assertion failed: ${what}`);
    },
    async test(name, fn) {
      const t0 = performance.now();
      try {
        const info = await fn();
        results.push({ name, ok: true, ms: +(performance.now() - t0).toFixed(1), ...(info ? { info } : {}) });
        console.log(`ok   ${name}`);
      } catch (e) {
        results.push({ name, ok: false, ms: +(performance.now() - t0).toFixed(1), error: `${e.name}: ${e.message}` });
        console.log(`FAIL ${name}: ${e.stack ?? e}`);
      }
    },
    finish(file, extra = {}) {
      const ok = results.every((r) => r.ok);
      writeFileSync(file, `${JSON.stringify({ ...extra, ok, results }, null, 1)}\n`);
      process.exit(ok ? 0 : 1);
    },
  };
}

/** n deterministic values in [-amp, amp). */
export function values(n, seed, amp = 1) {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * amp;
  });
}

/** A host tensor of `shape` with values(size, seed, amp), in `dtype`. */
export const t = (shape, seed, amp = 1, dtype = "f32") =>
  tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      amp,
    ),
    shape,
    { dtype },
  );

/** The MLP 784-64-10's params, seeded (the same on every rank and run), in `dtype`. */
export const mlpParams = (dtype = "f32") => ({
  w1: t([784, 64], 1, 0.05, dtype),
  b1: t([64], 2, 0.1, dtype),
  w2: t([64, 10], 3, 0.2, dtype),
  b2: t([10], 4, 0.1, dtype),
});

/** Its loss on a batch { x: [n, 784], y: [n] i32 labels }. */
export const mlpLoss = (p, b) =>
  softmaxCrossEntropy(matmul(relu(matmul(b.x, p.w1, { bias: p.b1 })), p.w2, { bias: p.b2 }), b.y);

/** n labels in [0, classes), seeded. */
export const labels = (n, seed, classes = 10) =>
  tensor(
    values(n, seed).map((v) => Math.floor(((v + 1) * classes) / 2)),
    [n],
    { dtype: "i32" },
  );
