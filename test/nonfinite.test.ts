// Non-finite values flow to the loss scaler instead of throwing inside an op: under withAMP
// 16-mixed an input that overflows f16 makes the step skip (params and optimizer state
// bit-identical, the scale halved) and the next finite batch trains; a 32-true step on NaN input
// returns a NaN loss; anomaly mode (configure({ detectAnomaly: true })) throws at the first
// non-finite value instead, naming the op.
import { afterEach, describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import {
  configure,
  matmul,
  mlp,
  mse,
  relu,
  runtime,
  scope,
  sgd,
  Tensor,
  type Tree,
  tensor,
  train,
  valueAndGrad,
  withAMP,
} from "../src/index.ts";

interface Batch {
  x: Tensor;
  y: Tensor;
}

const model = mlp([4, 16, 2]);
const lossFn = (p: Tree, b: Batch) => mse(model.apply(p, b.x), b.y);

/** A batch of 8 rows of small values; `poison` writes one input element (1e6, NaN, ...). */
function batch(seed: number, poison?: number): Batch {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: 32 }, () => rng.normal());
  if (poison !== undefined) x[5] = poison;
  return {
    x: tensor(x, [8, 4]),
    y: tensor(
      Float32Array.from({ length: 16 }, () => rng.normal()),
      [8, 2],
    ),
  };
}

/** Every tensor's bytes and every other value of `v`, deeply: equal snapshots mean bit-identical state. */
function snapshot(v: unknown): unknown {
  if (v instanceof Tensor) {
    return `${v.describe()} ${Buffer.from(new Uint8Array(runtime().memory.buffer, v.ptr, v.byteLength)).toString("hex")}`;
  }
  if (Array.isArray(v)) return v.map(snapshot);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snapshot(x)]));
  }
  return v;
}

afterEach(() => configure({ detectAnomaly: false }));

describe("non-finite values reach the loss scaler", () => {
  it("withAMP 16-mixed: an input of 1e6 (inf in f16) skips the step, keeps params and optimizer state, halves the scale; the next batch trains", async () => {
    const step = withAMP(valueAndGrad(lossFn), { precision: "16-mixed", scaler: { initScale: 256 } });
    const t = train(step, sgd({ lr: 0.1, momentum: 0.9 }));
    let state = await t.init(model.init(new Rng(1)) as unknown as Tree);
    const run = (b: () => Batch) =>
      scope(async () => {
        const r = await t(state, b());
        state = r.state;
        return r.out;
      });

    const first = await run(() => batch(10));
    expect(first.skip).toBeFalsy();
    expect(Number.isFinite(first.loss)).toBe(true);
    expect(first.metrics?.lossScale).toBe(256);

    const before = { params: snapshot(state.params), opt: snapshot(state.opt) };
    const bad = await run(() => batch(11, 1e6));
    expect(bad.skip).toBe(true);
    expect(Number.isFinite(bad.loss)).toBe(false);
    expect(bad.metrics?.lossScale).toBe(256);
    expect(snapshot(state.params)).toEqual(before.params);
    expect(snapshot(state.opt)).toEqual(before.opt);

    const next = await run(() => batch(12));
    expect(next.skip).toBeFalsy();
    expect(Number.isFinite(next.loss)).toBe(true);
    expect(next.metrics?.lossScale).toBe(128); // halved by the overflow
    expect(snapshot(state.params)).not.toEqual(before.params);
    expect(snapshot(state.opt)).not.toEqual(before.opt);
  });

  it("32-true: a NaN input gives a NaN loss without throwing", async () => {
    const t = train(valueAndGrad(lossFn), sgd({ lr: 0.1 }));
    let state = await t.init(model.init(new Rng(2)) as unknown as Tree);
    const out = await scope(async () => {
      const r = await t(state, batch(20, Number.NaN));
      state = r.state;
      return r.out;
    });
    expect(out.loss).toBeNaN();
  });
});

describe("anomaly mode (configure({ detectAnomaly: true }))", () => {
  it("throws at the first non-finite value, naming the op, the argument and the element", async () => {
    const t = train(valueAndGrad(lossFn), sgd({ lr: 0.1 }));
    const state = await t.init(model.init(new Rng(3)) as unknown as Tree);
    configure({ detectAnomaly: true });
    await scope(async () => {
      await expect(t(state, batch(30, Number.NaN))).rejects.toThrow(
        /plait: matmul: argument a has a non-finite value NaN at flat index 5 of f32\[8, 4\] \(anomaly mode/,
      );
    });
    // the same batch goes through (to a NaN loss) once the mode is off again
    configure({ detectAnomaly: false });
    await scope(async () => expect((await t(state, batch(30, Number.NaN))).out.loss).toBeNaN());
  });

  it("names the op that receives an f16 overflow under withAMP, and a loss that overflows from finite inputs", async () => {
    const step = withAMP(valueAndGrad(lossFn), { precision: "16-mixed", scaler: { initScale: 256 } });
    const t = train(step, sgd({ lr: 0.1 }));
    const state = await t.init(model.init(new Rng(4)) as unknown as Tree);
    configure({ detectAnomaly: true });
    // the first layer's product rounds x to f16 (1e6 → inf); the relu after it is the first op given inf
    await scope(async () => {
      await expect(t(state, batch(40, 1e6))).rejects.toThrow(
        /plait: relu: argument x has a non-finite value -?Infinity at flat index \d+ of f32\[8, 16\]/,
      );
    });
    scope(() => {
      expect(() => mse(tensor([3e38, 0], [2]), tensor([-3e38, 0], [2]))).toThrow(
        /plait: mse: the loss overflowed to Infinity though every input is finite/,
      );
    });
  });

  it("reads f16 and bf16 elements, ignores integer tensors, and is validated by configure", () => {
    configure({ detectAnomaly: true });
    scope(() => {
      const w = tensor([1, 2, 3, 4], [2, 2]);
      const h16 = tensor([1, 2, 1e5, 3], [2, 2], { dtype: "f16" }); // 1e5 rounds to inf in f16
      expect(() => matmul(h16, w)).toThrow(/matmul: argument a has a non-finite value Infinity at flat index 2 of f16/);
      const hb = tensor([1, Number.NaN, 0, 0], [2, 2], { dtype: "bf16" });
      expect(() => matmul(hb, w)).toThrow(/matmul: argument a has a non-finite value NaN at flat index 1 of bf16/);
      expect(() => relu(tensor([0, -1e30, 65504], [3]))).not.toThrow();
    });
    expect(() => configure({ detectAnomaly: "yes" as any })).toThrow(
      /configure\(\{ detectAnomaly \}\) must be true or false, got "yes"/,
    );
    // the runtime has started, but anomaly mode may still be switched; other options may not
    configure({ detectAnomaly: false });
    expect(() => configure({ threads: 2 })).toThrow(/before the first tensor/);
  });
});
