import { afterEach, describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { configure, scope, type Tensor, tensor } from "../src/index.ts";
import { bceWithLogits, crossEntropy, nll } from "../src/ops/classification.ts";
import { softmaxCrossEntropy } from "../src/ops/loss.ts";
import { huber, l1 } from "../src/ops/regression.ts";
import { logSoftmax } from "../src/ops/softmax.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, randn, randTensor } from "./ops-gradcheck.ts";

const value = (t: Tensor) => t.toArray()[0];

/** torch's cross_entropy(logits, labels, label_smoothing=eps, ignore_index=ignore), mean reduction, in float64. */
function crossEntropyRef(x: number[], labels: number[], C: number, eps: number, ignore?: number): number {
  let total = 0;
  let count = 0;
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] === ignore) continue;
    const row = x.slice(r * C, r * C + C);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const logp = row.map((v) => v - lse);
    total += -(1 - eps) * logp[labels[r]] - (eps / C) * logp.reduce((s, v) => s + v, 0);
    count++;
  }
  return total / count;
}

describe("crossEntropy and nll", () => {
  const rng = new Rng(71);

  for (const dtype of ["f32", "f64"] as const) {
    it(`match a float64 reference with label smoothing and an ignore index (${dtype})`, () => {
      for (const [eps, ignore] of [
        [0, undefined],
        [0.1, undefined],
        [0, -100],
        [0.25, 2],
      ] as const) {
        scope(() => {
          const x = randTensor(rng, [2, 3, 5], dtype, 3);
          const ys = [0, 4, 2, -100, 2, 1].map((y) => (y === -100 && ignore !== -100 ? 3 : y));
          const labels = tensor(ys, [2, 3], { dtype: "i32" });
          const got = value(crossEntropy(x, labels, { labelSmoothing: eps, ignoreIndex: ignore }));
          const want = crossEntropyRef(x.toArray(), ys, 5, eps, ignore);
          expect(Math.abs(got - want)).toBeLessThanOrEqual((dtype === "f32" ? 1e-6 : 1e-14) * Math.abs(want));
        });
      }
    });
  }

  it("without options equals the fused softmaxCrossEntropy, value and gradient (f64)", () =>
    scope(() => {
      const x = randTensor(rng, [4, 6]);
      const labels = tensor([5, 0, 3, 3], [4], { dtype: "i32" });
      const a = valueAndGrad((p: any) => crossEntropy(p.x, labels))({ x }, undefined);
      const b = valueAndGrad((p: any) => softmaxCrossEntropy(p.x, labels))({ x }, undefined);
      expect(a.loss).toBeCloseTo(b.loss, 14);
      const ga = (a.grads as any).x.toArray();
      const gb = (b.grads as any).x.toArray();
      for (let i = 0; i < ga.length; i++) expect(ga[i]).toBeCloseTo(gb[i], 14);
    }));

  it("nll of logSoftmax equals crossEntropy; both match finite differences in f64", () =>
    scope(() => {
      const labels = tensor([1, 7, 0, 7], [2, 2], { dtype: "i32" });
      const x = randTensor(rng, [2, 2, 3]);
      expect(value(nll(logSoftmax(x), labels, { ignoreIndex: 7 }))).toBeCloseTo(
        value(crossEntropy(x, labels, { ignoreIndex: 7 })),
        14,
      );
      gradCheck({ x: randTensor(rng, [2, 2, 3]) }, (p) =>
        crossEntropy(p.x, labels, { labelSmoothing: 0.2, ignoreIndex: 7 }),
      );
      gradCheck({ x: randTensor(rng, [2, 2, 3]) }, (p) => nll(p.x, labels, { ignoreIndex: 7 }));
      gradCheck({ x: randTensor(rng, [3, 4]) }, (p) => nll(logSoftmax(p.x), tensor([3, 0, 1], [3], { dtype: "i32" })));
    }));

  it("is stable for large logits and NaN when every row is ignored (torch)", () =>
    scope(() => {
      const x = tensor([1000, 1000, -1000, 0], [2, 2], { dtype: "f64" }); // losses log 2 and ~0
      expect(value(crossEntropy(x, tensor([0, 1], [2], { dtype: "i32" })))).toBeCloseTo(Math.log(2) / 2, 12);
      expect(value(crossEntropy(x, tensor([-1, -1], [2], { dtype: "i32" }), { ignoreIndex: -1 }))).toBeNaN();
    }));

  it("refuse bad labels, shapes and options, naming the op, the shapes and the rule", () =>
    scope(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => crossEntropy(x, tensor([0, 3], [2], { dtype: "i32" }))).toThrow(
        "plait: crossEntropy: argument labels[1] is 3, expected a class index in [0, 3)",
      );
      expect(() => nll(x, tensor([0, -5], [2], { dtype: "i32" }), { ignoreIndex: -100 })).toThrow(
        "plait: nll: argument labels[1] is -5, expected a class index in [0, 3) or the ignoreIndex -100",
      );
      expect(() => crossEntropy(x, tensor([0, 1, 2], [3], { dtype: "i32" }))).toThrow(
        "plait: crossEntropy: argument labels has shape [3], expected [2] (one per row of logits [2, 3]; rule: logits [...batch, C], labels [...batch])",
      );
      expect(() => crossEntropy(x, tensor([0, 1], [2]))).toThrow(
        "plait: crossEntropy: argument labels has dtype f32, expected i32",
      );
      expect(() => crossEntropy(x, tensor([0, 1], [2], { dtype: "i32" }), { labelSmoothing: 1.5 })).toThrow(
        "plait: crossEntropy: option labelSmoothing must be a number in [0, 1], got 1.5",
      );
    }));
});

describe("bceWithLogits", () => {
  const rng = new Rng(72);
  it("matches the naive formula where it is exact, and stays finite where it overflows", () =>
    scope(() => {
      for (const dtype of ["f32", "f64"] as const) {
        const x = randTensor(rng, [3, 4], dtype, 2);
        const t = tensor(
          Array.from({ length: 12 }, () => rng.uniform()),
          [3, 4],
          { dtype },
        );
        const xv = x.toArray();
        const tv = t.toArray();
        const sig = (v: number) => 1 / (1 + Math.exp(-v));
        const want =
          xv.reduce((s, v, i) => s - (tv[i] * Math.log(sig(v)) + (1 - tv[i]) * Math.log(1 - sig(v))), 0) / 12;
        expect(Math.abs(value(bceWithLogits(x, t)) - want)).toBeLessThanOrEqual(
          (dtype === "f32" ? 1e-6 : 1e-13) * want,
        );
      }
      const big = tensor([1000, -1000], [2], { dtype: "f64" });
      expect(value(bceWithLogits(big, tensor([0, 1], [2], { dtype: "f64" })))).toBe(1000);
    }));

  it("matches finite differences in f64 for logits and targets", () =>
    scope(() => {
      gradCheck({ x: randTensor(rng, [2, 3]), t: tensor(randn(rng, 6), [2, 3], { dtype: "f64" }) }, (p) =>
        bceWithLogits(p.x, p.t),
      );
    }));

  it("refuses mismatched shapes and dtypes", () =>
    scope(() => {
      const x = tensor(new Float32Array(4), [4]);
      expect(() => bceWithLogits(x, tensor(new Float32Array(3), [3]))).toThrow(
        "plait: bceWithLogits: argument targets has shape [3], expected [4] like logits",
      );
      expect(() => bceWithLogits(x, tensor(new Float64Array(4), [4]))).toThrow(
        "plait: bceWithLogits: argument targets has dtype f64, expected f32 like logits",
      );
    }));
});

describe("l1 and huber", () => {
  const rng = new Rng(73);
  it("match float64 references (huber on both sides of delta)", () =>
    scope(() => {
      for (const dtype of ["f32", "f64"] as const) {
        const p = randTensor(rng, [4, 5], dtype, 2);
        const t = randTensor(rng, [4, 5], dtype, 2);
        const d = p.toArray().map((v, i) => v - t.toArray()[i]);
        const tol = dtype === "f32" ? 1e-6 : 1e-14;
        const l1Ref = d.reduce((s, v) => s + Math.abs(v), 0) / 20;
        expect(Math.abs(value(l1(p, t)) - l1Ref)).toBeLessThanOrEqual(tol * l1Ref);
        for (const delta of [0.5, 1, 3]) {
          const h = d.reduce(
            (s, v) => s + (Math.abs(v) <= delta ? 0.5 * v * v : delta * (Math.abs(v) - 0.5 * delta)),
            0,
          );
          expect(Math.abs(value(huber(p, t, delta)) - h / 20)).toBeLessThanOrEqual((tol * h) / 20);
        }
      }
      // torch.nn.HuberLoss(delta=1)(tensor([0., 3.]), tensor([0.5, 0.])) = (0.125 + 2.5) / 2
      expect(value(huber(tensor([0, 3], [2]), tensor([0.5, 0], [2])))).toBe(1.3125);
    }));

  it("match finite differences in f64 away from the kinks", () =>
    scope(() => {
      const t = tensor([0, 0, 0, 0, 0, 0], [2, 3], { dtype: "f64" });
      const p0 = [0.3, -0.7, 2.5, -3, 1.4, -0.2];
      gradCheck({ p: tensor(p0, [2, 3], { dtype: "f64" }), t: tensor(t.toArray(), [2, 3], { dtype: "f64" }) }, (q) =>
        l1(q.p, q.t),
      );
      gradCheck({ p: tensor(p0, [2, 3], { dtype: "f64" }), t: tensor(t.toArray(), [2, 3], { dtype: "f64" }) }, (q) =>
        huber(q.p, q.t, 1),
      );
    }));

  it("refuse a bad delta and mismatched shapes", () =>
    scope(() => {
      const x = tensor(new Float32Array(2), [2]);
      expect(() => huber(x, x, 0)).toThrow("plait: huber: argument delta must be a number > 0, got 0");
      expect(() => l1(x, tensor(new Float32Array(3), [3]))).toThrow(
        "plait: l1: argument target has shape [3], expected [2] like pred",
      );
    }));
});

describe("anomaly mode", () => {
  afterEach(() => configure({ detectAnomaly: false }));
  it("a loss that overflows from finite inputs is an error naming the loss; an all-ignored batch is not", () =>
    scope(() => {
      const big = tensor([1e308, -1e308], [2], { dtype: "f64" });
      const zero = tensor([0, 0], [2], { dtype: "f64" });
      expect(value(l1(big, zero))).toBe(Number.POSITIVE_INFINITY); // off: flows on
      configure({ detectAnomaly: true });
      expect(() => l1(big, zero)).toThrow(/^plait: l1: the loss overflowed to Infinity though every input is finite/);
      expect(() => huber(big, zero)).toThrow(/^plait: huber: the loss overflowed/);
      expect(() => bceWithLogits(big, tensor([-1, 0], [2], { dtype: "f64" }))).toThrow(
        /^plait: bceWithLogits: the loss overflowed/,
      );
      const x = tensor([1, 2], [1, 2], { dtype: "f64" });
      expect(value(crossEntropy(x, tensor([-1], [1], { dtype: "i32" }), { ignoreIndex: -1 }))).toBeNaN();
    }));
});
