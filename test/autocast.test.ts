// autocast(dtype, params, fn): a precision region inside a step. Under bf16-mixed an "f32"
// region computes exactly what 32-true does; a "bf16" region in an f32 step rounds its
// products as mixed precision would; and the GPT trains under 16-mixed with its attention
// softmax in f32 (finite losses close to 32-true's).
import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import {
  autocast,
  cast,
  crossEntropy,
  gpt,
  linear,
  matmul,
  scope,
  sgd,
  sum,
  type Tensor,
  type Tree,
  tensor,
  train,
  valueAndGrad,
  withAMP,
  withPrecision,
} from "../src/index.ts";
import { randTensor } from "./ops-gradcheck.ts";

const rng = new Rng(11);
const x = randTensor(rng, [4, 8], "f32");
const w0 = randTensor(rng, [8, 3], "f32");
const b0 = randTensor(rng, [3], "f32");
const fresh = () => ({
  w: tensor(w0.toArray() as number[], [8, 3]),
  b: tensor(b0.toArray() as number[], [3]),
});
type P = { w: Tensor; b: Tensor };

async function oneStep(step: Parameters<typeof train>[0], params: P) {
  const trainer = train(step, sgd({ lr: 0 }));
  const state = await trainer.init(params as unknown as Tree);
  const r = await trainer(state, x);
  return r.out.loss;
}

describe("autocast", () => {
  it('"f32" inside bf16-mixed multiplies in f32: 32-true on the bf16-rounded weights, bit for bit', async () => {
    const plain = (p: Tree, b: Tensor) => sum(linear(b, (p as P).w, (p as P).b));
    const region = (p: Tree, b: Tensor) => autocast("f32", p as P, (q) => sum(linear(b, q.w, q.b)));
    const rounded = () => {
      const p = fresh();
      return { w: scope(() => cast(cast(p.w, "bf16"), "f32")), b: p.b };
    };
    const f32 = await oneStep(withPrecision(valueAndGrad(plain), "32-true"), rounded());
    const mixed = await oneStep(withAMP(valueAndGrad(plain), { precision: "bf16-mixed" }), fresh());
    const inRegion = await oneStep(withAMP(valueAndGrad(region), { precision: "bf16-mixed" }), fresh());
    expect(mixed).not.toBe(f32); // without the region the inputs are rounded to bf16 too
    expect(inRegion).toBe(f32);
  });

  it("passes gradients back to the half leaves as f32", () => {
    const p = { w: cast(fresh().w, "bf16"), b: fresh().b };
    const { grads } = valueAndGrad((q: Tree) => autocast("f32", q as P, (r) => sum(linear(x, r.w, r.b))))(
      p,
      undefined,
      {
        computeDType: "bf16",
      },
    );
    const g = grads as P;
    expect(g.w.dtype).toBe("f32");
    expect(g.w.shape).toEqual([8, 3]);
    // d sum(x·w)/dw[i, j] = Σ_rows x[r, i]
    const xs = x.toArray() as number[];
    for (let i = 0; i < 8; i++) {
      const want = [0, 1, 2, 3].reduce((t, r) => t + xs[r * 8 + i], 0);
      expect(g.w.data()[i * 3]).toBeCloseTo(want, 5);
    }
  });

  it('"bf16" rounds the region\'s weights as mixed precision would, and leaves 1-D and f64 leaves alone', () => {
    scope(() => {
      const p = { ...fresh(), d: randTensor(rng, [2, 2], "f64") };
      const got = autocast("bf16", p, (q) => {
        expect(q.w.dtype).toBe("bf16");
        expect(q.b.dtype).toBe("f32");
        expect(q.d).toBe(p.d);
        return matmul(x, q.w).toArray();
      });
      expect(got).toEqual(matmul(x, cast(p.w, "bf16")).toArray());
      expect(got).not.toEqual(matmul(x, p.w).toArray());
    });
  });

  it("frees its copies outside a step, keeps what the result holds, and rejects other dtypes", () => {
    const p = fresh();
    let copy: Tensor | undefined;
    autocast("f16", p, (q) => {
      copy = q.w;
      return 0;
    });
    expect(copy?.disposed).toBe(true);
    const kept = autocast("f16", p, (q) => q.w);
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(() => autocast("f64" as never, p, () => 0)).toThrow(/dtype must be "f32", "f16" or "bf16", got "f64"/);
  });
});

describe("gpt under 16-mixed", () => {
  it("trains with finite losses close to 32-true's (attention's softmax in f32)", async () => {
    const model = gpt({ vocab: 6, context: 8, dModel: 16, heads: 2, layers: 1 });
    const ids = tensor(
      Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 1) % 6),
      [2, 8],
      { dtype: "i32" },
    );
    const y = tensor(
      Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 2) % 6),
      [2, 8],
      { dtype: "i32" },
    );
    const loss = (p: Tree, b: { x: Tensor; y: Tensor }) => crossEntropy(model.apply(p, b.x), b.y);
    const losses = async (precision: "32-true" | "16-mixed") => {
      const trainer = train(withPrecision(valueAndGrad(loss), precision), sgd({ lr: 0.5 }));
      let state = await trainer.init(model.init(new Rng(0)) as unknown as Tree);
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await trainer(state, { x: ids, y });
        state = r.state;
        out.push(r.out.loss);
      }
      return out;
    };
    const full = await losses("32-true");
    const half = await losses("16-mixed");
    expect(half.every(Number.isFinite)).toBe(true);
    expect(half.at(-1)!).toBeLessThan(half[0]);
    for (let i = 0; i < 5; i++) expect(Math.abs(half[i] - full[i])).toBeLessThan(0.02);
  });
});
