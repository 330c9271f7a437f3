import { describe, expect, it } from "vitest";
import { treeLeaves } from "../src/core/tree.ts";
import { Rng } from "../src/data/rng.ts";
import { runtime, scope, type Tensor, type Tree, tensor } from "../src/index.ts";
import { heNormal, heUniform, xavierNormal, xavierUniform, zerosInit } from "../src/nn/init.ts";
import { mlp } from "../src/nn/mlp.ts";
import { softmaxCrossEntropy } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, randn } from "./ops-gradcheck.ts";

/** Forward and analytic backward of a relu MLP with mean softmax cross-entropy, in float64. */
function mlpReference(ws: number[][], bs: number[][], sizes: number[], x: number[], labels: Int32Array) {
  const batch = labels.length;
  const hs: number[][] = [x];
  const zs: number[][] = [];
  for (let l = 0; l < ws.length; l++) {
    const [fin, fout] = [sizes[l], sizes[l + 1]];
    const h = hs[l];
    const z = new Array(batch * fout).fill(0);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < fout; j++) {
        let s = bs[l][j];
        for (let i = 0; i < fin; i++) s += h[r * fin + i] * ws[l][i * fout + j];
        z[r * fout + j] = s;
      }
    }
    zs.push(z);
    hs.push(l < ws.length - 1 ? z.map((v) => Math.max(v, 0)) : z);
  }
  const classes = sizes.at(-1)!;
  const logits = hs.at(-1)!;
  let loss = 0;
  let dz = new Array(batch * classes).fill(0);
  for (let r = 0; r < batch; r++) {
    const row = logits.slice(r * classes, (r + 1) * classes);
    const m = Math.max(...row);
    const s = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
    loss += Math.log(s) + m - row[labels[r]];
    for (let c = 0; c < classes; c++)
      dz[r * classes + c] = (Math.exp(row[c] - m) / s - (c === labels[r] ? 1 : 0)) / batch;
  }
  const dws: number[][] = [];
  const dbs: number[][] = [];
  for (let l = ws.length - 1; l >= 0; l--) {
    const [fin, fout] = [sizes[l], sizes[l + 1]];
    const h = hs[l];
    const dw = new Array(fin * fout).fill(0);
    const db = new Array(fout).fill(0);
    const dh = new Array(batch * fin).fill(0);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < fout; j++) {
        const g = dz[r * fout + j];
        db[j] += g;
        for (let i = 0; i < fin; i++) {
          dw[i * fout + j] += h[r * fin + i] * g;
          dh[r * fin + i] += g * ws[l][i * fout + j];
        }
      }
    }
    dws[l] = dw;
    dbs[l] = db;
    if (l > 0) dz = dh.map((v, i) => (zs[l - 1][i] > 0 ? v : 0));
  }
  return { loss: loss / batch, dws, dbs };
}

describe("mlp", () => {
  it("gives the analytic gradient of softmax cross-entropy through a relu MLP", () => {
    const sizes = [13, 17, 9, 5];
    const batch = 11;
    scope(() => {
      const rng = new Rng(16);
      const model = mlp(sizes);
      const params = model.init(rng);
      // non-zero biases, so their gradients and the bias path of the GEMM are exercised
      for (const layer of params.layers) layer.b.data().set(randn(rng, layer.b.size, 0.1));
      const x = tensor(randn(rng, batch * sizes[0]), [batch, sizes[0]], { dtype: "f32" });
      const labels = new Int32Array(batch).map(() => Math.floor(rng.uniform() * sizes.at(-1)!));
      const y = tensor(labels, [batch], { dtype: "i32" });
      const step = valueAndGrad((p: Tree, b: { x: Tensor; y: Tensor }) =>
        softmaxCrossEntropy(model.apply(p, b.x), b.y),
      );
      const { loss, grads } = step(params, { x, y });
      const ref = mlpReference(
        params.layers.map((l) => l.w.toArray()),
        params.layers.map((l) => l.b.toArray()),
        sizes,
        x.toArray(),
        labels,
      );
      expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-6 * ref.loss);
      const g = grads as any;
      for (let l = 0; l < sizes.length - 1; l++) {
        const bound = (r: number[]) => 1e-5 * r.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const bw = bound(ref.dws[l]);
        const bb = bound(ref.dbs[l]);
        expectClose(g.layers[l].w.toArray(), ref.dws[l], () => bw, `dW${l}`);
        expectClose(g.layers[l].b.toArray(), ref.dbs[l], () => bb, `db${l}`);
      }
    });
  });

  it("holds the arena steady over 1,000 training steps", () => {
    const rng = new Rng(17);
    const model = mlp([20, 32, 10]);
    const params = model.init(rng);
    const x = tensor(randn(rng, 16 * 20), [16, 20], { dtype: "f32" });
    const y = tensor(
      new Int32Array(16).map((_, i) => i % 10),
      [16],
      { dtype: "i32" },
    );
    const step = valueAndGrad((p: Tree, b: { x: Tensor; y: Tensor }) => softmaxCrossEntropy(model.apply(p, b.x), b.y));
    const arena = runtime().arena;
    // one warm-up step: the GEMM keeps a cached packing block from its first call on
    for (const t of treeLeaves(step(params, { x, y }).grads)) t.dispose();
    const start = arena.bytesInUse;
    let first = Number.NaN;
    let last = Number.NaN;
    for (let i = 0; i < 1000; i++) {
      const { loss, grads } = step(params, { x, y });
      // a plain SGD update, so the loss must fall (the grads are real)
      params.layers.forEach((layer, l) => {
        for (const k of ["w", "b"] as const) {
          const p = layer[k].data();
          const d = (grads as any).layers[l][k].data();
          for (let j = 0; j < p.length; j++) p[j] -= 0.1 * d[j];
        }
      });
      for (const layer of (grads as any).layers) for (const t of Object.values(layer) as Tensor[]) t.dispose();
      expect(arena.bytesInUse).toBe(start);
      if (i === 0) first = loss;
      last = loss;
    }
    expect(last).toBeLessThan(first / 10);
  });

  it("initialises weights with torch's He and Xavier scales and zero biases", () => {
    const rng = new Rng(18);
    const [fin, fout] = [400, 300];
    const stats = (t: Tensor) => {
      const v = t.toArray();
      const m = v.reduce((s, x) => s + x, 0) / v.length;
      return {
        mean: m,
        std: Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length),
        max: Math.max(...v.map(Math.abs)),
      };
    };
    scope(() => {
      const n = fin * fout;
      const cases = [
        [heNormal(rng, [fin, fout]), Math.sqrt(2 / fin), Number.POSITIVE_INFINITY],
        [heUniform(rng, [fin, fout]), Math.sqrt(2 / fin), Math.sqrt(6 / fin)],
        [xavierNormal(rng, [fin, fout]), Math.sqrt(2 / (fin + fout)), Number.POSITIVE_INFINITY],
        [
          xavierUniform(rng, [fin, fout], { gain: 5 / 3 }),
          (5 / 3) * Math.sqrt(2 / (fin + fout)),
          (5 / 3) * Math.sqrt(6 / (fin + fout)),
        ],
      ] as const;
      for (const [t, std, bound] of cases) {
        const s = stats(t);
        expect(Math.abs(s.mean)).toBeLessThan((5 * std) / Math.sqrt(n));
        expect(Math.abs(s.std / std - 1)).toBeLessThan(0.01);
        expect(s.max).toBeLessThanOrEqual(bound);
      }
      expect(heNormal(new Rng(5), [3, 4]).toArray()).toEqual(heNormal(new Rng(5), [3, 4]).toArray());
      expect(heNormal(new Rng(5), [3, 4], { dtype: "f64" }).dtype).toBe("f64");
      expect(zerosInit([7]).toArray()).toEqual(new Array(7).fill(0));
      const p = mlp([4, 3, 2], { activation: "tanh" }).init(new Rng(1));
      expect(p.layers.map((l) => [l.w.shape, l.b.shape])).toEqual([
        [[4, 3], [3]],
        [[3, 2], [2]],
      ]);
      expect(p.layers[0].b.toArray()).toEqual([0, 0, 0]);
    });
  });

  it("rejects bad sizes, activations, params and initialiser shapes", () => {
    scope(() => {
      expect(() => mlp([4])).toThrow(/mlp: argument sizes must list at least 2 positive integers, got \[4\]/);
      expect(() => mlp([4, 0, 2])).toThrow(/got \[4,0,2\]/);
      expect(() => mlp([4, 2], { activation: "swish" as any })).toThrow(
        /mlp: option activation must be one of relu, gelu, tanh, sigmoid, got "swish"/,
      );
      const model = mlp([4, 3, 2]);
      const x = tensor(new Float32Array(8), [2, 4]);
      expect(() => model.apply({ layers: [] } as any, x)).toThrow(
        /mlp.apply: argument params must be \{ layers: \[2 × \{ w, b \}\] \} as init\(\) returns for mlp\(\[4, 3, 2\]\), got 0 layers/,
      );
      expect(() => heNormal(new Rng(1), [3])).toThrow(
        /heNormal: argument shape must be \[fanIn, fanOut\] with both > 0, got \[3\]/,
      );
      expect(() => xavierUniform(new Rng(1), [3, 2], { gain: -1 })).toThrow(
        /xavierUniform: option gain must be a finite number > 0/,
      );
      const bad = model.init(new Rng(1));
      expect(() => model.apply(bad, tensor(new Float32Array(6), [2, 3]))).toThrow(
        /mlp.apply: argument x must be \[batch, 4\], got shape \[2, 3\]/,
      );
    });
  });
});
