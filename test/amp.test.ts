// withAMP ("16-mixed", "bf16-mixed") and the half-precision matmul under it: the half product
// against a float64 reference of the rounded operands; the loss-scale sequence under injected
// overflows against torch's GradScaler algorithm (and DeepSpeed's) end to end through train;
// bit-identical skipped steps; the global skip decision through ctx.comm; the per-step compute
// copies and the cast policy; MLP training close to 32-true; checkpoint resume bit for bit; bad input.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load, save } from "../src/checkpoint/index.ts";
import type { Comm } from "../src/comm/types.ts";
import { bf16ToNumber, f16ToNumber, numberToBF16, numberToF16 } from "../src/core/tensor.ts";
import { Rng } from "../src/data/rng.ts";
import {
  adamw,
  type Ctx,
  deepspeedScaler,
  type LossScaler,
  type StepFn,
  type StepLike,
  type StepOut,
  scope,
  sgd,
  Tensor,
  type TrainState,
  type Tree,
  tensor,
  torchScaler,
  train,
  transform,
  treeLeaves,
  treeMap,
  unscale,
  withAccumulation,
  withAMP,
} from "../src/index.ts";
import { mul } from "../src/ops/arith.ts";
import { matmul } from "../src/ops/linear.ts";
import { sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { batchOrder, bytesOf, evaluate, mnistModel, trainMlp } from "./precision-helpers.ts";

const ROUND = {
  f16: (x: number) => f16ToNumber(numberToF16(x)),
  bf16: (x: number) => bf16ToNumber(numberToBF16(x)),
} as const;

const root = mkdtempSync(join(tmpdir(), "plait-amp-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** op(a)·op(b) in float64 for row-major a, b. */
function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

const absRef = (
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
) => matmulRef(Array.from(a, Math.abs), Array.from(b, Math.abs), m, n, k, tA, tB);

/** |got − ref| ≤ (k + 2)·2⁻²⁴·Σ|terms|: the products of half values are exact in f32, only the sums round. */
function expectProduct(what: string, got: ArrayLike<number>, ref: Float64Array, abs: Float64Array, k: number) {
  for (let i = 0; i < ref.length; i++) {
    const tol = (k + 2) * 2 ** -24 * abs[i];
    if (!(Math.abs(got[i] - ref[i]) <= tol))
      throw new Error(`${what}[${i}]: got ${got[i]}, expected ${ref[i]} ± ${tol}`);
  }
}

describe("matmul with a half operand", () => {
  const rng = new Rng(41);
  const randn = (n: number, s = 1) => Float64Array.from({ length: n }, () => rng.normal() * s);

  for (const half of ["bf16", "f16"] as const) {
    it(`${half}: rounds the f32 operand, multiplies with f32 accumulation, and gives f32 gradients from the rounded G`, () => {
      for (const [m, k, n] of [
        [1, 1, 1],
        [3, 4, 5],
        [5, 17, 3],
        [17, 33, 9],
        [0, 3, 4],
      ]) {
        for (const [tA, tB] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ] as const) {
          scope(() => {
            const xs = randn(m * k);
            const ws = randn(k * n);
            const bs = randn(n);
            const gs = randn(m * n, 1000);
            const x = tensor(Float32Array.from(xs), tA ? [k, m] : [m, k]);
            const w = tensor(Float32Array.from(ws), tB ? [n, k] : [k, n], { dtype: half });
            const bias = tensor(Float32Array.from(bs), [n]);
            const gOut = tensor(Float32Array.from(gs), [m, n]);
            const r = ROUND[half];
            const xr = Array.from(x.toArray(), r);
            const wr = w.toArray();
            const gr = Array.from(gOut.toArray(), r);
            const { loss, grads } = valueAndGrad((p: any) =>
              sum(mul(matmul(p.x, p.w, { transA: tA, transB: tB, bias: p.bias }), gOut)),
            )({ x, w, bias }, undefined, { computeDType: half });
            // forward, through the loss Σ C∘G
            const c = matmulRef(xr, wr, m, n, k, tA, tB).map((v, i) => v + bias.toArray()[i % n]);
            const lossRef = c.reduce((s, v, i) => s + v * gOut.toArray()[i], 0);
            expect(Math.abs(loss - lossRef)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(lossRef)) * (k + 2));
            const g = grads as Record<string, Tensor>;
            expect([g.x.dtype, g.w.dtype, g.bias.dtype]).toEqual(["f32", "f32", "f32"]);
            // dX = G·op(W)ᵀ (stored transposed when transA), dW = op(X)ᵀ·G likewise
            const dx = tA ? matmulRef(wr, gr, k, m, n, tB, true) : matmulRef(gr, wr, m, k, n, false, !tB);
            const dxAbs = tA ? absRef(wr, gr, k, m, n, tB, true) : absRef(gr, wr, m, k, n, false, !tB);
            expectProduct("dx", g.x.toArray(), dx, dxAbs, n);
            const dw = tB ? matmulRef(gr, xr, n, k, m, true, tA) : matmulRef(xr, gr, k, n, m, !tA, false);
            const dwAbs = tB ? absRef(gr, xr, n, k, m, true, tA) : absRef(xr, gr, k, n, m, !tA, false);
            expectProduct("dw", g.w.toArray(), dw, dwAbs, m);
            const db = Array.from({ length: n }, (_, j) => gOut.toArray().filter((_, i) => i % n === j));
            const got = g.bias.toArray();
            for (let j = 0; j < n; j++) {
              const ref = db[j].reduce((s, v) => s + v, 0);
              const tol = (m + 2) * 2 ** -24 * db[j].reduce((s, v) => s + Math.abs(v), 0);
              expect(Math.abs(got[j] - ref)).toBeLessThanOrEqual(tol);
            }
          });
        }
      }
    });
  }

  it("turns an output gradient beyond f16's range into inf at the cast (what a loss scaler watches)", () => {
    scope(() => {
      const x = tensor([[1, 2]]);
      const w = tensor([[1], [1]], undefined, { dtype: "f16" });
      const { grads } = valueAndGrad((p: any) => sum(matmul(p.x, p.w)))({ x, w }, undefined, {
        computeDType: "f16",
        lossScale: 2 ** 17,
      });
      expect((grads as any).w.toArray()).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
      const fine = valueAndGrad((p: any) => sum(matmul(p.x, p.w)))({ x, w }, undefined, {
        computeDType: "f16",
        lossScale: 2 ** 15,
      });
      expect((fine.grads as any).w.toArray()).toEqual([2 ** 15, 2 ** 16]);
      expect(fine.gradScale).toBe(2 ** 15);
    });
  });

  it("widens a half bias and frees its rounded copies when nothing records", () => {
    scope(() => {
      const x = tensor([[0.1, 0.2, 0.3]]);
      const w = tensor([[1], [1], [1]], undefined, { dtype: "bf16" });
      const b = tensor([0.5], [1], { dtype: "bf16" });
      const y = matmul(x, w, { bias: b });
      expect(y.dtype).toBe("f32");
      const xr = [0.1, 0.2, 0.3].map(ROUND.bf16);
      expect(y.toArray()[0]).toBe(Math.fround(Math.fround(Math.fround(xr[0] + xr[1]) + xr[2]) + 0.5));
    });
  });
});

// ------------------------------------------------------------------------------------------

/** A step whose grads are 0.5 per element times the loss scale, with an inf on chosen steps. */
function injectedStep(
  overflowAt: ReadonlySet<number>,
  seen: Ctx[] = [],
  seenParams: Tree[] = [],
  seenValues: number[][][] = [],
) {
  let t = 0;
  const step: StepFn<unknown> = (params, _batch, ctx): StepOut => {
    seen.push(ctx);
    seenParams.push(params);
    seenValues.push(treeLeaves(params).map((p) => p.toArray()));
    const grads = treeMap((p) => {
      const g = new Tensor(p.shape, "f32");
      g.data().fill(0.5 * ctx.lossScale);
      return g;
    }, params);
    if (overflowAt.has(t)) treeLeaves(grads)[0].data()[1] = Number.POSITIVE_INFINITY;
    t++;
    return { loss: 1, grads, gradScale: ctx.lossScale };
  };
  return step;
}

const smallParams = () => ({
  w: tensor(
    Float32Array.from({ length: 12 }, (_, i) => i / 8),
    [4, 3],
  ),
  b: tensor([1, 2, 3]),
});

/** torch.amp.GradScaler's update(), as REFERENCE.md §3.1 states it: each step's scale and skip, and the final state. */
function torchSequence(overflows: ReadonlySet<number>, steps: number, init: number, interval: number) {
  let scale = init;
  let tracker = 0;
  const seq: { scale: number; skip: boolean }[] = [];
  for (let t = 0; t < steps; t++) {
    const skip = overflows.has(t);
    seq.push({ scale, skip });
    if (skip) {
      scale = Math.fround(scale * 0.5);
      tracker = 0;
    } else if (++tracker === interval) {
      const grown = Math.fround(scale * 2);
      if (Number.isFinite(grown)) scale = grown;
      tracker = 0;
    }
  }
  return { seq, scale, tracker };
}

async function run(
  step: StepLike<unknown>,
  steps: number,
  opts: { comm?: Comm; optimizer?: ReturnType<typeof sgd> } = {},
) {
  const trainer = train(step, opts.optimizer ?? sgd({ lr: 0.25 }), { comm: opts.comm });
  let state = await trainer.init(smallParams());
  const outs: StepOut[] = [];
  for (let t = 0; t < steps; t++) {
    const r = await trainer(state, undefined);
    state = r.state;
    outs.push(r.out);
  }
  return { state, outs };
}

describe("withAMP 16-mixed: loss scaling", () => {
  it("follows torch's scale sequence: growth exactly at the interval, backoff on every overflow, tracker reset", async () => {
    const overflows = new Set([2, 3, 9, 15, 16, 17]);
    const steps = 24;
    const seen: Ctx[] = [];
    const scaler = { initScale: 2 ** 10, growthInterval: 3 };
    const { state, outs } = await run(withAMP(injectedStep(overflows, seen), { precision: "16-mixed", scaler }), steps);
    const { seq: ref, scale: last, tracker } = torchSequence(overflows, steps, 2 ** 10, 3);
    expect(outs.map((o) => ({ scale: o.metrics?.lossScale, skip: o.skip }))).toEqual(ref);
    expect(seen.map((c) => c.lossScale)).toEqual(ref.map((r) => r.scale));
    expect(outs.every((o) => o.gradScale === 1)).toBe(true);
    // every applied step moved each param by exactly lr · 0.5 (the grads came back unscaled)
    const applied = ref.filter((r) => !r.skip).length;
    let w = 1 / 8;
    for (let i = 0; i < applied; i++) w = Math.fround(w - 0.125);
    expect((state.params as any).w.toArray()[1]).toBe(w);
    expect(state.transforms.amp).toEqual({
      kind: "torch",
      scale: last,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 3,
      growthTracker: tracker,
    });
  });

  it("uses torch's defaults (2^16, interval 2000) and a DeepSpeed scaler value as given", async () => {
    // the scaler is made by the init (state.transforms.amp), before the first step
    const fresh = await train(withAMP(injectedStep(new Set()), { precision: "16-mixed" }), sgd({ lr: 0.25 })).init(
      smallParams(),
    );
    expect(fresh.transforms.amp).toEqual(torchScaler());
    expect(fresh.transforms.amp).toMatchObject({ kind: "torch", scale: 2 ** 16, growthInterval: 2000 });
    const { outs } = await run(withAMP(injectedStep(new Set()), { precision: "16-mixed" }), 2);
    expect(outs.map((o) => o.metrics?.lossScale)).toEqual([2 ** 16, 2 ** 16]);
    // DeepSpeed: hysteresis 2 (the first overflow only uses it up, still skipping), window counted from the last overflow
    const ds = deepspeedScaler({ initialScalePower: 8, lossScaleWindow: 2, hysteresis: 2 });
    const overflows = new Set([1, 2, 6]);
    const r = await run(withAMP(injectedStep(overflows), { precision: "16-mixed", scaler: ds }), 9);
    expect(r.outs.map((o) => [o.metrics?.lossScale, o.skip])).toEqual([
      [256, false], // iter 0: (0 − (−1)) % 2 ≠ 0
      [256, true], // iter 1: overflow, hysteresis 2 → 1
      [256, true], // iter 2: overflow, hysteresis 1 → halve
      [128, false], // iter 3: 3 − 2 = 1
      [128, false], // iter 4: 2 → grow, hysteresis reset
      [256, false], // iter 5: 3
      [256, true], // iter 6: overflow, hysteresis 2 → 1
      [256, false], // iter 7: 1
      [256, false], // iter 8: 2 → grow
    ]);
  });

  it("leaves params and optimizer state (moments, step count) bit-identical on a skipped step", async () => {
    const step = withAMP(injectedStep(new Set([3])), { precision: "16-mixed", scaler: { initScale: 256 } });
    const trainer = train(step, adamw({ lr: 0.01 }));
    let state = await trainer.init(smallParams());
    for (let t = 0; t < 3; t++) state = (await trainer(state, undefined)).state;
    const before = { params: bytesOf(state.params), slots: bytesOf(state.opt.slots as Tree), step: state.opt.step };
    const r = await trainer(state, undefined);
    expect(r.out.skip).toBe(true);
    expect(bytesOf(r.state.params)).toEqual(before.params);
    expect(bytesOf(r.state.opt.slots as Tree)).toEqual(before.slots);
    expect(r.state.opt.step).toBe(before.step);
    const next = await trainer(r.state, undefined);
    expect(next.out.skip).toBe(false);
    expect(next.state.opt.step).toBe(before.step + 1);
  });

  it("takes the skip decision globally: an overflow on another rank (through comm.allReduce max) skips here too", async () => {
    const calls: string[] = [];
    let n = 0;
    const peerOverflowAt = new Set([1]);
    const comm = {
      rank: 0,
      worldSize: 2,
      async allReduce(x: Tensor, op: string) {
        calls.push(`${op} ${x.describe()}`);
        if (peerOverflowAt.has(n++)) x.data()[0] = Math.max(x.data()[0], 1);
        return x;
      },
    } as unknown as Comm;
    const { outs } = await run(
      withAMP(injectedStep(new Set()), { precision: "16-mixed", scaler: { initScale: 64 } }),
      3,
      {
        comm,
      },
    );
    expect(outs.map((o) => o.skip)).toEqual([false, true, false]);
    expect(outs.map((o) => o.metrics?.lossScale)).toEqual([64, 64, 32]);
    expect(calls).toEqual(["max f32[1]", "max f32[1]", "max f32[1]"]);
  });

  it("passes accumulating steps through untouched and scales once per window (withAccumulation inside)", async () => {
    const seen: Ctx[] = [];
    const step = withAMP(withAccumulation(injectedStep(new Set(), seen), 2), {
      precision: "16-mixed",
      scaler: { initScale: 8, growthInterval: 2 },
    });
    const { outs, state } = await run(step, 8);
    expect(outs.map((o) => o.accumulating === true)).toEqual([true, false, true, false, true, false, true, false]);
    expect(seen.map((c) => c.lossScale)).toEqual([8, 8, 8, 8, 16, 16, 16, 16]);
    expect(outs.filter((o) => !o.accumulating).map((o) => o.metrics?.lossScale)).toEqual([8, 8, 16, 16]);
    expect(outs.filter((o) => o.accumulating).every((o) => o.metrics?.lossScale === undefined)).toBe(true);
    expect((state.params as any).b.toArray()).toEqual([1, 2, 3].map((v) => v - 4 * 0.25 * 0.5));
  });

  it("does not unscale grads that are already unscaled, and unscale() refuses to run twice", async () => {
    const inner: Uint8Array[] = [];
    const outer: Uint8Array[] = [];
    const unscaled: StepFn<unknown> = (params, batch, ctx) => {
      const out = injectedStep(new Set())(params, batch, { ...ctx, lossScale: 1 }) as StepOut;
      inner.push(bytesOf(out.grads));
      return { ...out, gradScale: 1 };
    };
    const amp = withAMP(unscaled, { precision: "16-mixed", scaler: { initScale: 4 } });
    await run(
      transform(amp, {
        name: "recordGrads",
        async run(p, b, c, inner) {
          const out = await inner.run(p, b, c);
          outer.push(bytesOf(out.grads));
          return out;
        },
      }),
      2,
    );
    expect(outer).toEqual(inner);
    scope(() => {
      const out = { loss: 0, grads: { w: tensor([4, 8]) }, gradScale: 4 };
      const once = unscale(out);
      expect(once.finite).toBe(true);
      expect((once.out.grads as any).w.toArray()).toEqual([1, 2]);
      expect(once.out.gradScale).toBe(1);
      expect(() => unscale(once.out)).toThrow(
        "plait: unscale: the gradients are already unscaled (gradScale 1); unscaling them again would divide by the loss scale twice",
      );
      // an f16 gradient is widened into f32 on the way, and the reciprocal is f32(1/f64(scale))
      const half = unscale({
        loss: 0,
        grads: [tensor([3, Number.POSITIVE_INFINITY], [2], { dtype: "f16" })],
        gradScale: 3,
      });
      expect(half.finite).toBe(false);
      expect((half.out.grads as Tensor[])[0].dtype).toBe("f32");
      expect((half.out.grads as Tensor[])[0].toArray()[0]).toBe(Math.fround(3 * Math.fround(1 / 3)));
    });
  });
});

describe("withAMP: compute copies and the cast policy", () => {
  for (const precision of ["16-mixed", "bf16-mixed"] as const) {
    it(`${precision}: weights (ndim ≥ 2) arrive as half copies cast for each step and freed after it; 1-D leaves as the f32 masters`, async () => {
      const seen: Ctx[] = [];
      const params: Tree[] = [];
      const values: number[][][] = []; // each step's leaves (b, w), read during the step
      const step = withAMP(injectedStep(new Set(), seen, params, values), { precision });
      const { state } = await run(step, 3);
      const half = precision === "16-mixed" ? "f16" : "bf16";
      const ws = params.map((p) => (p as any).w as Tensor);
      expect(ws.map((w) => w.dtype)).toEqual([half, half, half]);
      expect(new Set(ws).size).toBe(3); // a new copy every step: nothing cached that could go stale
      expect(ws.every((w) => w.disposed)).toBe(true); // each freed once its step ran
      expect(params[1]).not.toBe(params[0]); // and a new tree
      expect(params.every((p) => (p as any).b === (state.params as any).b)).toBe(true); // the master itself
      expect((state.params as any).w.dtype).toBe("f32");
      expect(seen.map((c) => c.computeDType)).toEqual([half, half, half]);
      // each copy holds the master after the latest update (k updates before step k)
      const master = (state.params as any).w.toArray() as number[];
      for (let k = 0; k < 3; k++) {
        const before = master.map((v) => {
          for (let i = 0; i < 3 - k; i++) v = Math.fround(v + 0.25 * 0.5);
          return v;
        });
        expect(values[k][1]).toEqual(before.map(ROUND[half]));
      }
    });
  }
});

// ------------------------------------------------------------------------------------------

describe("withAMP: training the MNIST MLP", () => {
  // 512 digits, batch 32, 6 epochs (96 steps) of SGD (lr 0.05, momentum 0.9) from the same init
  // and batch order. Measured: |Δ loss| ≤ 0.006 and |Δ accuracy| ≤ 0.6 points on 500 test digits.
  it("16-mixed and bf16-mixed land within 0.02 of 32-true's test loss and 1.5 points of its accuracy", async () => {
    const model = mnistModel();
    const order = batchOrder(6);
    const opt = () => sgd({ lr: 0.05, momentum: 0.9 });
    const base = await trainMlp(model, (s) => s, order, undefined, opt());
    const ref = evaluate(model, base.state.params);
    expect(ref.accuracy).toBeGreaterThan(0.84);
    for (const precision of ["16-mixed", "bf16-mixed"] as const) {
      const { state, outs } = await trainMlp(model, (s) => withAMP(s, { precision }), order, undefined, opt());
      const got = evaluate(model, state.params);
      expect(outs.some((o) => o.skip)).toBe(false);
      expect(Math.abs(got.loss - ref.loss)).toBeLessThan(0.02);
      expect(Math.abs(got.accuracy - ref.accuracy)).toBeLessThanOrEqual(0.015);
      // and it is not the same computation: the half rounding shows in the bits
      expect(bytesOf(state.params)).not.toEqual(bytesOf(base.state.params));
    }
  });

  it("resumes from a checkpoint mid-run bit for bit, loss scaler included", async () => {
    const model = mnistModel(32);
    const order = batchOrder(1).slice(0, 12);
    // init 2^24 overflows f16 at the cast of G, so the scaler backs off, grows and backs off again
    const wrap = (s: StepLike<any>) =>
      withAMP(s, { precision: "16-mixed", scaler: { initScale: 2 ** 24, growthInterval: 3 } });
    const straight = await trainMlp(model, wrap, order);
    const scales = straight.outs.map((o) => o.metrics?.lossScale);
    expect(straight.outs.filter((o) => o.skip).length).toBeGreaterThan(1);
    const first = await trainMlp(model, wrap, order.slice(0, 6));
    const dir = join(root, "ckpt");
    save(dir, first.state); // a TrainState is a checkpoint state as it is
    const loaded = load<TrainState>(dir);
    const rest = await trainMlp(model, wrap, order.slice(6), loaded);
    expect([...first.outs, ...rest.outs].map((o) => o.metrics?.lossScale)).toEqual(scales);
    expect(bytesOf(rest.state.params)).toEqual(bytesOf(straight.state.params));
    expect(bytesOf(rest.state.opt.slots as Tree)).toEqual(bytesOf(straight.state.opt.slots as Tree));
    expect(rest.state.opt.step).toBe(straight.state.opt.step);
    expect(rest.state.transforms.amp).toEqual(straight.state.transforms.amp);
    expect((rest.state.transforms.amp as LossScaler).kind).toBe("torch");
  });
});

describe("withAMP: bad input", () => {
  const step = injectedStep(new Set());
  it("names the valid precisions for an unknown one", () => {
    expect(() => withAMP(step, { precision: "fp16" as any })).toThrow(
      'plait: withAMP: precision must be one of "16-mixed", "bf16-mixed", got "fp16"',
    );
    expect(() => withAMP(step, { precision: "bf16-true" as any })).toThrow(
      /precision must be one of "16-mixed", "bf16-mixed"/,
    );
    expect(() => withAMP(step, undefined as any)).toThrow(/withAMP: options must be an object/);
  });

  it("rejects a loss scaler with bf16-mixed, as Lightning does", () => {
    expect(() => withAMP(step, { precision: "bf16-mixed", scaler: { initScale: 1024 } })).toThrow(
      /plait: withAMP: bf16-mixed takes no loss scaler .* got scaler \{"initScale":1024\}/,
    );
    expect(() => withAMP(step, { precision: "bf16-mixed", scaler: torchScaler() })).toThrow(
      /bf16-mixed takes no loss scaler/,
    );
  });

  it("rejects non-positive or out-of-range scale options and unknown option names", () => {
    const bad = (scaler: unknown) => () => withAMP(step, { precision: "16-mixed", scaler: scaler as any });
    expect(bad({ initScale: 0 })).toThrow(
      "plait: withAMP: option scaler: loss scaler option initScale must be a finite number > 0, got 0",
    );
    expect(bad({ initScale: -4 })).toThrow(/initScale must be a finite number > 0, got -4/);
    expect(bad({ growthFactor: 1 })).toThrow(/growthFactor must be a finite number > 1, got 1/);
    expect(bad({ backoffFactor: 0 })).toThrow(/backoffFactor must be a number in \(0, 1\), got 0/);
    expect(bad({ growthInterval: 0 })).toThrow(/growthInterval must be a positive integer, got 0/);
    expect(bad({ init_scale: 8 })).toThrow(
      "plait: withAMP: option scaler has unknown keys init_scale; torch GradScaler options are initScale, growthFactor, backoffFactor, growthInterval",
    );
    expect(bad({ kind: "torch", scale: 0 })).toThrow(
      "plait: withAMP: option scaler.scale must be a finite number > 0, got 0",
    );
  });

  it("refuses to nest loss scalers, non-f32 master params, and an inner gradScale that is neither the scale nor 1", async () => {
    const inner = withAMP(step, { precision: "16-mixed" });
    // two withAMPs: their scalers would share the state key "amp", refused by the init
    await expect(run(withAMP(inner, { precision: "16-mixed" }), 1)).rejects.toThrow(
      'plait: withAMP: state key "amp" is already used by a transform inside it (withAMP(step)); two transforms cannot share one key',
    );
    // a loss already scaled by something outside (here a transform that scales it by 2)
    const scaledOutside = transform(inner, {
      name: "scaleLoss",
      enter: (params, batch, ctx) => ({ params, batch, ctx: { ...ctx, lossScale: 2 } }),
    });
    await expect(run(scaledOutside, 1)).rejects.toThrow(
      /plait: withAMP: the loss is already scaled \(ctx.lossScale 2\)/,
    );
    const amp = withAMP(step, { precision: "bf16-mixed" });
    const ctx = { rank: 0, worldSize: 1, lossScale: 1, computeDType: "f64", state: {} } as unknown as Ctx;
    await expect(async () =>
      amp.run({ w: tensor([[1]], undefined, { dtype: "f64" }) }, undefined, ctx),
    ).rejects.toThrow(
      "plait: withAMP: params leaf 0 is f64[1, 1]; the master params must be f32 (its init casts them; start from trainer.init)",
    );
    const wrong: StepFn<unknown> = (p, b, c) => ({ ...(step(p, b, c) as StepOut), gradScale: 3 });
    await expect(run(withAMP(wrong, { precision: "16-mixed", scaler: { initScale: 8 } }), 1)).rejects.toThrow(
      "plait: withAMP: the inner step returned gradScale 3, expected 8 (the loss scale it was given) or 1 (unscaled)",
    );
  });
});
