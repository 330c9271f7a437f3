import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { mse, softmaxCrossEntropy } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

/** Mean softmax cross-entropy in float64, max-subtracted. */
function xentRef(x: ArrayLike<number>, labels: ArrayLike<number>, rows: number, cols: number) {
  let total = 0;
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    total += Math.log(s) + m - x[r * cols + labels[r]];
    for (let c = 0; c < cols; c++) {
      dx[r * cols + c] = (Math.exp(x[r * cols + c] - m) / s - (c === labels[r] ? 1 : 0)) / rows;
    }
  }
  return { loss: total / rows, dx };
}

function labelsFor(rng: Rng, rows: number, cols: number): Int32Array {
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) y[r] = Math.floor(rng.uniform() * cols);
  return y;
}

describe("softmaxCrossEntropy", () => {
  const rng = new Rng(1);
  const shapes: [number, number][] = [
    ...TAIL_SIZES.filter((c) => c > 0).map((c) => [3, c] as [number, number]),
    [1, 1],
    [64, 10],
    [4, 50_000],
  ];

  for (const dtype of ["f32", "f64"] as const) {
    it(`matches the float64 reference, value and gradient, at every tail (${dtype})`, () => {
      for (const [rows, cols] of shapes) {
        scope(() => {
          const x = randn(rng, rows * cols, 3);
          const y = labelsFor(rng, rows, cols);
          const logits = tensor(x, [rows, cols], { dtype });
          const labels = tensor(y, [rows], { dtype: "i32" });
          const xs = logits.toArray(); // the values the kernel sees (rounded to f32)
          const ref = xentRef(xs, y, rows, cols);
          const step = valueAndGrad((p: any) => softmaxCrossEntropy(p.logits, labels));
          const { loss, grads } = step({ logits }, undefined);
          const tol = dtype === "f64" ? 1e-12 : 2e-6;
          expect(Math.abs(loss - ref.loss)).toBeLessThanOrEqual(tol * (1 + Math.abs(ref.loss)));
          const g = (grads as any).logits.toArray();
          expectClose(g, ref.dx, (e) => tol * (1 / rows + Math.abs(e)), `dlogits [${rows}, ${cols}]`);
        });
      }
    });
  }

  it("stays finite for huge logits (max-subtracted) and gives the exact limits", () => {
    for (const dtype of ["f32", "f64"] as const) {
      scope(() => {
        const logits = tensor([1e30, 0, -1e30, 5, 5, 5, 5, 5], [2, 4], { dtype });
        const labels = tensor([1, 2], [2], { dtype: "i32" });
        const loss = softmaxCrossEntropy(logits, labels).toArray()[0];
        // row 0: log Σ exp ≈ 1e30, minus x[1] = 0; row 1: log 4 from four equal logits.
        expect(loss).toBeCloseTo((dtype === "f32" ? Math.fround(1e30) : 1e30) / 2 + Math.log(4) / 2, 0);
        expect(Number.isFinite(loss)).toBe(true);
      });
    }
  });

  it("matches finite differences in f64", () => {
    scope(() => {
      const labels = tensor([2, 0, 4], [3], { dtype: "i32" });
      gradCheck({ logits: randTensor(rng, [3, 5]) }, (p) => softmaxCrossEntropy(p.logits, labels));
    });
  });

  it("rejects bad labels, count mismatches and non-finite logits, naming them", () => {
    scope(() => {
      const logits = tensor(new Float32Array(12), [3, 4]);
      const lab = (v: number[]) => tensor(v, [v.length], { dtype: "i32" });
      expect(() => softmaxCrossEntropy(logits, lab([0, 4, 1]))).toThrow(
        /softmaxCrossEntropy: argument labels\[1\] is 4, expected a class index in \[0, 4\)/,
      );
      expect(() => softmaxCrossEntropy(logits, lab([0, 1, -2]))).toThrow(/labels\[2\] is -2/);
      // the SIMD body finds it too (more than 4 labels)
      const big = tensor(new Float32Array(24), [6, 4]);
      expect(() => softmaxCrossEntropy(big, lab([0, 1, 2, 3, 1, 9]))).toThrow(/labels\[5\] is 9/);
      expect(() => softmaxCrossEntropy(big, lab([0, 1, 7, 3, 1, 2]))).toThrow(/labels\[2\] is 7/);
      expect(() => softmaxCrossEntropy(logits, lab([0, 1]))).toThrow(
        /argument labels has 2 labels, expected 3 \(one per row of logits \[3, 4\]\)/,
      );
      expect(() => softmaxCrossEntropy(logits, tensor([0, 1, 2], [3]))).toThrow(/labels has dtype f32, expected i32/);
      expect(() => softmaxCrossEntropy(tensor(new Float32Array(4), [4]), lab([0]))).toThrow(
        /logits must have 2 dimensions, got shape \[4\]/,
      );
      expect(() => softmaxCrossEntropy(tensor(new Float32Array(0), [0, 4]), lab([]))).toThrow(/no rows/);
    });
  });

  it("computes on non-finite logits instead of throwing: the loss is NaN (the kernel flags any non-finite logit)", () => {
    scope(() => {
      const labels = tensor([0, 1, 2, 3, 1, 2], [6], { dtype: "i32" });
      const base = Float32Array.from(randn(rng, 24));
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        const x = base.slice();
        x[13] = bad; // row 3, column 1
        const step = valueAndGrad((q: any) => softmaxCrossEntropy(q.x, labels));
        const { loss, grads } = step({ x: tensor(x, [6, 4]) }, undefined);
        expect(loss).toBeNaN();
        const g = (grads as any).x.toArray() as number[];
        expect(g.slice(0, 12).every(Number.isFinite)).toBe(true); // the other rows are untouched
        if (bad !== Number.NEGATIVE_INFINITY) expect(g.slice(12, 16).some(Number.isNaN)).toBe(true);
      }
    });
  });
});

describe("mse", () => {
  const rng = new Rng(2);

  for (const dtype of ["f32", "f64"] as const) {
    it(`matches the float64 reference, value and gradient, at every tail (${dtype})`, () => {
      for (const n of [...TAIL_SIZES.filter((k) => k > 0), 5000]) {
        scope(() => {
          const p = tensor(randn(rng, n), [n], { dtype });
          const t = tensor(randn(rng, n), [n], { dtype });
          const pv = p.toArray();
          const tv = t.toArray();
          let ref = 0;
          for (let i = 0; i < n; i++) ref += (pv[i] - tv[i]) ** 2;
          ref /= n;
          const { loss, grads } = valueAndGrad((q: any) => mse(q.p, q.t))({ p, t }, undefined);
          const tol = dtype === "f64" ? 1e-13 : 1e-6;
          expect(Math.abs(loss - ref)).toBeLessThanOrEqual(tol * ref);
          const gp = (grads as any).p.toArray();
          const gt = (grads as any).t.toArray();
          const d = pv.map((v, i) => (2 * (v - tv[i])) / n);
          expectClose(gp, d, (e) => tol * Math.abs(e), `dpred [${n}]`);
          expectClose(
            gt,
            gp.map((v: number) => -v),
            () => 0,
            `dtarget [${n}]`,
          );
        });
      }
    });
  }

  it("handles signed zeros, subnormals and huge values", () => {
    scope(() => {
      const p = tensor([0, -0, 1e-40, 1e18, -3], [5]);
      const t = tensor([-0, 0, 0, -1e18, -3], [5]);
      const pv = p.toArray();
      const tv = t.toArray();
      const ref = pv.reduce((s, v, i) => s + (v - tv[i]) ** 2, 0) / 5;
      expect(mse(p, t).toArray()[0] / ref).toBeCloseTo(1, 6);
      const z = tensor([-0, 0, 1e-45, -1e-45], [4]);
      expect(mse(z, z).toArray()[0]).toBe(0);
    });
  });

  it("matches finite differences in f64", () => {
    scope(() => {
      gradCheck({ p: randTensor(rng, [2, 3]), t: randTensor(rng, [2, 3]) }, (q) => mse(q.p, q.t));
    });
  });

  it("rejects shape and dtype mismatches, empty and non-finite inputs", () => {
    scope(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      expect(() => mse(a, tensor(new Float32Array(6), [3, 2]))).toThrow(
        /mse: argument target has shape \[3, 2\], expected \[2, 3\] like pred/,
      );
      expect(() => mse(a, tensor(new Float64Array(6), [2, 3], { dtype: "f64" }))).toThrow(
        /mse: argument target has dtype f64, expected f32 like pred/,
      );
      expect(() => mse(tensor([], [0]), tensor([], [0]))).toThrow(/mse: argument pred is empty/);
    });
  });

  it("computes on non-finite input and on overflow: the loss and gradients come out non-finite", () => {
    scope(() => {
      const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const t: Tensor = tensor([1, 2, 3, 4, 5, Number.NaN], [2, 3]);
      const { loss, grads } = valueAndGrad((q: any) => mse(q.a, q.t))({ a, t }, undefined);
      expect(loss).toBeNaN();
      const ga = (grads as any).a.toArray();
      expect(ga.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
      expect(ga[5]).toBeNaN();
      expect(mse(tensor([Number.NEGATIVE_INFINITY, 0], [2]), tensor([0, 0], [2])).toArray()[0]).toBe(
        Number.POSITIVE_INFINITY,
      );
      // finite inputs whose squared difference overflows f32
      expect(mse(tensor([3e38, 0], [2]), tensor([-3e38, 0], [2])).toArray()[0]).toBe(Number.POSITIVE_INFINITY);
    });
  });
});
