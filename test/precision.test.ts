// withPrecision: 64-true against a float64 reference MLP; the true half precisions (half params
// and grads, half the bytes; the optimizer's widen–update–round); master weights keeping the
// small updates that pure bf16-true loses; train.init casting the params (the init chain); bad input.
import { describe, expect, it } from "vitest";
import { bf16ToNumber, f16ToNumber, numberToBF16, numberToF16 } from "../src/core/tensor.ts";
import { gatherBatch } from "../src/data/gather.ts";
import { Rng } from "../src/data/rng.ts";
import {
  adam,
  type Ctx,
  cast,
  type Optimizer,
  PRECISIONS,
  type StepFn,
  type StepLike,
  type StepOut,
  scope,
  sgd,
  Tensor,
  type Tree,
  tensor,
  train,
  transform,
  treeFlatten,
  treeLeaves,
  treeMap,
  withPrecision,
} from "../src/index.ts";
import { mlp } from "../src/nn/mlp.ts";
import { matmul } from "../src/ops/linear.ts";
import { sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { type Batch, batchOrder, digits, lossStep, mnistModel, trainMlp } from "./precision-helpers.ts";

const ROUND = {
  f16: (x: number) => f16ToNumber(numberToF16(x)),
  bf16: (x: number) => bf16ToNumber(numberToBF16(x)),
} as const;

const totalBytes = (tree: Tree) => treeLeaves(tree).reduce((n, t) => n + t.byteLength, 0);

describe("64-true", () => {
  /**
   * The same MLP (784→16→10, tanh) in plain float64 JavaScript: forward, mean softmax
   * cross-entropy, backward, and torch's SGD with momentum.
   */
  function referenceRun(init: Float64Array[], batches: { x: Float64Array; y: Int32Array }[], lr: number, mom: number) {
    const [w1, b1, w2, b2] = init.map((p) => Float64Array.from(p));
    const bufs = [w1, b1, w2, b2].map((p) => new Float64Array(p.length));
    const losses: number[] = [];
    const [I, H, O] = [784, 16, 10];
    batches.forEach(({ x, y }, step) => {
      const B = y.length;
      const h = new Float64Array(B * H);
      const z = new Float64Array(B * O);
      for (let r = 0; r < B; r++) {
        for (let j = 0; j < H; j++) {
          let s = b1[j];
          for (let i = 0; i < I; i++) s += x[r * I + i] * w1[i * H + j];
          h[r * H + j] = Math.tanh(s);
        }
        for (let k = 0; k < O; k++) {
          let s = b2[k];
          for (let j = 0; j < H; j++) s += h[r * H + j] * w2[j * O + k];
          z[r * O + k] = s;
        }
      }
      let loss = 0;
      const dz = new Float64Array(B * O);
      for (let r = 0; r < B; r++) {
        const row = z.subarray(r * O, r * O + O);
        const m = Math.max(...row);
        const e = Array.from(row, (v) => Math.exp(v - m));
        const se = e.reduce((a, b) => a + b, 0);
        loss += Math.log(se) + m - row[y[r]];
        for (let k = 0; k < O; k++) dz[r * O + k] = (e[k] / se - (k === y[r] ? 1 : 0)) / B;
      }
      losses.push(loss / B);
      const g = [w1, b1, w2, b2].map((p) => new Float64Array(p.length));
      for (let r = 0; r < B; r++) {
        for (let k = 0; k < O; k++) {
          g[3][k] += dz[r * O + k];
          for (let j = 0; j < H; j++) g[2][j * O + k] += h[r * H + j] * dz[r * O + k];
        }
        for (let j = 0; j < H; j++) {
          let dh = 0;
          for (let k = 0; k < O; k++) dh += dz[r * O + k] * w2[j * O + k];
          const da = dh * (1 - h[r * H + j] * h[r * H + j]);
          g[1][j] += da;
          for (let i = 0; i < I; i++) g[0][i * H + j] += x[r * I + i] * da;
        }
      }
      [w1, b1, w2, b2].forEach((p, n) => {
        for (let i = 0; i < p.length; i++) {
          bufs[n][i] = step === 0 ? g[n][i] : mom * bufs[n][i] + g[n][i];
          p[i] -= lr * bufs[n][i];
        }
      });
    });
    return { params: [w1, b1, w2, b2], losses };
  }

  it("trains the MLP with f64 params, f64 grads and f64 kernels end to end, matching a float64 reference", async () => {
    const model = mlp([784, 16, 10], { activation: "tanh" });
    const init = model.init(new Rng(9));
    const initValues = [init.layers[0].w, init.layers[0].b, init.layers[1].w, init.layers[1].b].map((t) =>
      Float64Array.from(t.toArray()),
    );
    const order = batchOrder(1).slice(0, 5);
    const dtypes = new Set<string>();
    const step = withPrecision((p: Tree, b: Batch, ctx: Ctx) => {
      dtypes.add(`x ${b.x.dtype}, ctx ${ctx.computeDType}`);
      return lossStep(model)(p, b, ctx);
    }, "64-true");
    const recorded = transform(step, {
      name: "recordGradDTypes",
      async run(p, b, ctx, inner) {
        const out = await inner.run(p, b, ctx);
        for (const g of treeLeaves(out.grads)) dtypes.add(`grad ${g.dtype}`);
        return out;
      },
    });
    const trainer = train(recorded, sgd({ lr: 0.1, momentum: 0.9 }));
    let state = await trainer.init(init as unknown as Tree);
    // the init chain runs through the transform around withPrecision: the params train holds are f64
    expect(treeLeaves(state.params).map((t) => t.dtype)).toEqual(["f64", "f64", "f64", "f64"]);
    const losses: number[] = [];
    const batches: { x: Float64Array; y: Int32Array }[] = [];
    for (const idx of order) {
      await scope(async () => {
        const { images, labels } = gatherBatch(digits.train, idx);
        batches.push({ x: Float64Array.from(images.toArray()), y: Int32Array.from(labels.toArray()) });
        const r = await trainer(state, { x: images, y: labels });
        state = r.state;
        losses.push(r.out.loss);
      });
    }
    expect([...dtypes].sort()).toEqual(["grad f64", "x f64, ctx f64"]);
    expect(treeLeaves(state.params).every((t) => t.dtype === "f64")).toBe(true);
    expect(treeLeaves(state.opt.slots as Tree).every((t) => t.dtype === "f64")).toBe(true);
    const ref = referenceRun(initValues, batches, 0.1, 0.9);
    for (const [i, l] of losses.entries()) expect(Math.abs(l - ref.losses[i])).toBeLessThan(1e-12);
    const got = treeLeaves(state.params); // layers[0].b, layers[0].w, layers[1].b, layers[1].w (sorted keys)
    const pairs = [
      [got[1], ref.params[0]],
      [got[0], ref.params[1]],
      [got[3], ref.params[2]],
      [got[2], ref.params[3]],
    ] as const;
    for (const [t, r] of pairs) {
      const v = t.toArray();
      for (let i = 0; i < r.length; i++) {
        if (!(Math.abs(v[i] - r[i]) <= 1e-12 * (1 + Math.abs(r[i])))) throw new Error(`param ${i}: ${v[i]} vs ${r[i]}`);
      }
    }
  });
});

describe("16-true and bf16-true", () => {
  /** Params and grads bytes of one step of the MNIST MLP under `wrap`. */
  async function bytesUnder(wrap: (s: StepLike<Batch>) => StepLike<Batch>) {
    let grads = 0;
    const { state } = await trainMlp(
      mnistModel(),
      (s) =>
        transform(wrap(s), {
          name: "recordGradBytes",
          async run(p, b, c, inner) {
            const out = await inner.run(p, b, c);
            grads = totalBytes(out.grads);
            expect(treeLeaves(out.grads).map((g) => g.dtype)).toEqual(treeLeaves(p).map((t) => t.dtype));
            return out;
          },
        }),
      batchOrder(1).slice(0, 1),
    );
    return { params: totalBytes(state.params), grads };
  }

  it("hold params and return grads in half: exactly half the bytes of 32-true", async () => {
    const f32 = await bytesUnder((s) => withPrecision(s, "32-true"));
    expect(f32.params).toBe(4 * (784 * 64 + 64 + 64 * 10 + 10));
    expect(f32.grads).toBe(f32.params);
    for (const p of ["16-true", "bf16-true"] as const) {
      const half = await bytesUnder((s) => withPrecision(s, p));
      expect(half).toEqual({ params: f32.params / 2, grads: f32.grads / 2 });
    }
    const f64 = await bytesUnder((s) => withPrecision(s, "64-true"));
    expect(f64).toEqual({ params: 2 * f32.params, grads: 2 * f32.grads });
  });

  const optimizers: [string, () => Optimizer][] = [
    ["adam", () => adam({ lr: 0.01, weightDecay: 0.01 })],
    ["sgd momentum", () => sgd({ lr: 0.1, momentum: 0.9, weightDecay: 1e-3 })],
    ["sgd", () => sgd({ lr: 0.1 })],
  ];
  for (const half of ["bf16", "f16"] as const) {
    for (const [name, make] of optimizers) {
      it(`${name} on ${half} params: the f32 update of the widened values, rounded to nearest even, with f32 moments`, () => {
        const rng = new Rng(half.length + name.length);
        for (const n of [0, 1, 3, 4, 5, 17, 1023, 100_003]) {
          scope(() => {
            const values = Array.from({ length: n }, () => rng.normal());
            const gradValues = Array.from({ length: n }, () => rng.normal() * 0.1);
            const p = tensor(values, [n], { dtype: half });
            const wide = cast(p, "f32");
            const opt = make();
            const ref = make();
            let state = opt.init({ p });
            let refState = ref.init({ p: wide });
            expect(treeLeaves(state.slots as Tree).every((t) => t.dtype === "f32")).toBe(true);
            for (let t = 0; t < 3; t++) {
              const g = tensor(
                gradValues.map((v) => v * (t + 1)),
                [n],
                { dtype: half },
              );
              state = opt.update({ p }, { p: g }, state);
              refState = ref.update({ p: wide }, { p: cast(g, "f32") }, refState);
              // the reference keeps an f32 param; the half run rounds after every update
              const rounded = wide.toArray().map(ROUND[half]);
              expect(p.toArray()).toEqual(rounded);
              wide.data().set(Float32Array.from(rounded));
            }
            expect(treeFlatten(state.slots as Tree).leaves.map((t) => t.toArray())).toEqual(
              treeFlatten(refState.slots as Tree).leaves.map((t) => t.toArray()),
            );
          });
        }
      });
    }
  }

  it("with a loss scaler (16-true only): scaled, unscaled in f32, rounded to f16; state under 'precision'", async () => {
    const seen: number[] = [];
    let t = 0;
    const inner: StepFn<unknown> = (params, _b, ctx): StepOut => {
      seen.push(ctx.lossScale);
      const grads = treeMap((p) => {
        const g = new Tensor(p.shape, "f32");
        g.data().fill(t === 1 ? Number.POSITIVE_INFINITY : 0.25 * ctx.lossScale);
        return g;
      }, params);
      t++;
      return { loss: 0, grads, gradScale: ctx.lossScale };
    };
    const trainer = train(
      withPrecision(inner, "16-true", { scaler: { initScale: 1024, growthInterval: 1 } }),
      sgd({ lr: 1 }),
    );
    let state = await trainer.init({ w: tensor([[1, 2]]) });
    const skips: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await trainer(state, undefined);
      state = r.state;
      skips.push(r.out.skip === true);
    }
    expect(seen).toEqual([1024, 2048, 1024]);
    expect(skips).toEqual([false, true, false]);
    expect((state.params as any).w.dtype).toBe("f16");
    expect((state.params as any).w.toArray()).toEqual([0.5, 1.5]);
    expect((state.transforms.precision as any).scale).toBe(2048);
  });
});

describe("master weights", () => {
  // w = 1 and an update of 0.001 per step: below half a bf16 ulp at 1 (2⁻⁹ below, 2⁻⁸ above).
  async function run(opts: { masterWeights?: boolean }) {
    const x = tensor([[1, 1]]);
    const seenW: Tensor[] = [];
    const seenValues: number[][] = [];
    const step = withPrecision(
      (p: Tree, b: unknown, ctx: Ctx) => {
        seenW.push((p as any).w);
        seenValues.push((p as any).w.toArray());
        return valueAndGrad((q: any) => sum(matmul(x, q.w)))(p, b, ctx);
      },
      "bf16-true",
      opts,
    );
    const trainer = train(step, sgd({ lr: 1e-3 }));
    let state = await trainer.init({ w: tensor([[1], [1]]) });
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await trainer(state, undefined);
      state = r.state;
      losses.push(r.out.loss);
    }
    return { w: (state.params as any).w as Tensor, seen: seenW, seenValues, losses };
  }

  it("keep the small updates that pure bf16-true loses to rounding", async () => {
    const pure = await run({});
    expect(pure.w.dtype).toBe("bf16");
    expect(pure.w.toArray()).toEqual([1, 1]); // every 1 − 0.001 rounded back to 1
    expect(new Set(pure.losses)).toEqual(new Set([2]));
    const master = await run({ masterWeights: true });
    expect(master.w.dtype).toBe("f32");
    let w = 1;
    const masters: number[] = []; // the master before each step
    for (let i = 0; i < 20; i++) {
      masters.push(w);
      w = Math.fround(w - Math.fround(1e-3));
    }
    expect(master.w.toArray()).toEqual([w, w]);
    // each step computed with a bf16 copy of the masters made for it (so it follows them) and
    // freed after it: a new tensor every step, none kept between steps
    expect(master.seen.map((t) => t.dtype)).toEqual(Array(20).fill("bf16"));
    expect(master.seenValues).toEqual(masters.map((m) => [ROUND.bf16(m), ROUND.bf16(m)]));
    expect(new Set(master.seen).size).toBe(20);
    expect(master.seen.every((t) => t.disposed)).toBe(true);
    expect(master.losses.at(-1)).toBe(2 * ROUND.bf16(Math.fround(w + Math.fround(1e-3))));
    expect(master.losses.at(-1)).toBeLessThan(2);
  });
});

describe("train.init and the precision's param dtype", () => {
  it("train.init casts the params into new tensors of the precision's dtype; a transform around it keeps its init", async () => {
    const w = tensor([[0.1, 0.2]]);
    const loss = valueAndGrad((p: any) => sum(matmul(p.w, tensor([[1], [1]]))));
    const step = withPrecision(loss, "bf16-true");
    const wrapped = transform(step, { name: "passThrough" });
    const trainer = train(wrapped, sgd({ lr: 0.1 }));
    const state = await trainer.init({ w });
    const held = (state.params as any).w as Tensor;
    expect(held).not.toBe(w);
    expect(held.dtype).toBe("bf16");
    expect(held.toArray()).toEqual([0.1, 0.2].map(ROUND.bf16));
    expect(w.dtype).toBe("f32");
    await trainer(state, undefined);
    // 32-true keeps f32 leaves as they are (no copy)
    expect(((await train(withPrecision(loss, "32-true"), sgd({ lr: 0.1 })).init({ w })).params as any).w).toBe(w);
  });

  it("a wrapper that skips the step's init (a bare function calling its run) gets a clear error, not silently f32 params", async () => {
    const step = withPrecision(
      valueAndGrad((p: any) => sum(p.w)),
      "bf16-true",
    );
    const trainer = train((p: Tree, b: unknown, c: Ctx) => step.run(p, b, c), sgd({ lr: 0.1 }));
    await expect(trainer(await trainer.init({ w: tensor([1, 2]) }), undefined)).rejects.toThrow(
      /plait: withPrecision: params leaf 0 is f32\[2\], expected bf16 under "bf16-true" \(its init casts the params: start from trainer\.init\)/,
    );
  });

  it("every precision trains the MLP: finite, falling losses", async () => {
    for (const p of PRECISIONS) {
      const { outs } = await trainMlp(mnistModel(32), (s) => withPrecision(s, p), batchOrder(1).slice(0, 12));
      expect(outs.every((o) => Number.isFinite(o.loss))).toBe(true);
      expect(outs.slice(-3).reduce((a, o) => a + o.loss, 0)).toBeLessThan(
        outs.slice(0, 3).reduce((a, o) => a + o.loss, 0),
      );
    }
  });
});

describe("withPrecision: bad input", () => {
  const step = valueAndGrad((p: any) => sum(p.w));
  it("lists the valid precisions for an unknown one", () => {
    expect(() => withPrecision(step, "fp16" as any)).toThrow(
      'plait: withPrecision: precision must be one of "64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", got "fp16"',
    );
    expect(() => withPrecision(step, 16 as any)).toThrow(/precision must be one of .* got 16$/);
  });

  it("rejects options that do not apply to the precision", () => {
    expect(() => withPrecision(step, "32-true", { masterWeights: true })).toThrow(
      'plait: withPrecision: option masterWeights does not apply to "32-true"',
    );
    expect(() => withPrecision(step, "64-true", { scaler: { initScale: 8 } })).toThrow(
      'plait: withPrecision: option scaler does not apply to "64-true"',
    );
    expect(() => withPrecision(step, "bf16-mixed", { masterWeights: false })).toThrow(
      /option masterWeights applies to "16-true" and "bf16-true"; "bf16-mixed" always keeps f32 master params/,
    );
    expect(() => withPrecision(step, "bf16-true", { scaler: { initScale: 8 } })).toThrow(
      /"bf16-true" takes no loss scaler/,
    );
    expect(() => withPrecision(step, "bf16-mixed", { scaler: { initScale: 8 } })).toThrow(
      /bf16-mixed takes no loss scaler/,
    );
    expect(() => withPrecision(step, "16-true", { scaler: { initScale: -1 } })).toThrow(
      /option scaler: loss scaler option initScale must be a finite number > 0, got -1/,
    );
    expect(() => withPrecision(step, "16-true", { master: true } as any)).toThrow(
      "plait: withPrecision: unknown option master; known: masterWeights, scaler",
    );
    expect(() => withPrecision(step, "16-true", { masterWeights: 1 } as any)).toThrow(
      "plait: withPrecision: option masterWeights must be a boolean, got 1",
    );
  });
});
