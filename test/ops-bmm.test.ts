import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, type Tensor, tensor } from "../src/index.ts";
import { mul } from "../src/ops/arith.ts";
import { bmm } from "../src/ops/bmm.ts";
import { matmul } from "../src/ops/linear.ts";
import { sum } from "../src/ops/reduce.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { expectClose, gradCheck, randTensor } from "./ops-gradcheck.ts";

/** op(a[i]) · op(b[i]) in float64 for every batch matrix; a 2-D operand is shared. */
function bmmRef(a: Tensor, b: Tensor, transA: boolean, transB: boolean): number[] {
  const av = a.toArray();
  const bv = b.toArray();
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const [m, k] = transA ? [ca, ra] : [ra, ca];
  const n = transB ? rb : cb;
  const count = a.ndim > 2 ? a.size / (ra * ca) : b.size / (rb * cb);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const ao = a.ndim > 2 ? i * ra * ca : 0;
    const bo = b.ndim > 2 ? i * rb * cb : 0;
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const x = transA ? av[ao + p * m + r] : av[ao + r * k + p];
          const y = transB ? bv[bo + c * k + p] : bv[bo + p * n + c];
          s += x * y;
        }
        out.push(s);
      }
    }
  }
  return out;
}

const FLAGS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

/** Stored shapes of a batch of [m, k] and [k, n] products under the transpose flags. */
const stored = (batch: number[], r: number, c: number, t: boolean) => [...batch, ...(t ? [c, r] : [r, c])];

describe("bmm", () => {
  const rng = new Rng(31);

  it("matches a float64 reference for 3-D, 4-D and shared 2-D operands, every transpose layout (f32, f64)", () => {
    for (const dtype of ["f32", "f64"] as const) {
      for (const [transA, transB] of FLAGS) {
        for (const [ba, bb] of [
          [[3], [3]],
          [
            [2, 3],
            [2, 3],
          ],
          [[4], []],
          [[], [4]],
          [[1], [1]],
        ]) {
          scope(() => {
            const a = randTensor(rng, stored(ba, 5, 7, transA), dtype);
            const b = randTensor(rng, stored(bb, 7, 6, transB), dtype);
            const y = bmm(a, b, { transA, transB });
            expect(y.shape).toEqual([...(ba.length ? ba : bb), 5, 6]);
            expect(y.dtype).toBe(dtype);
            const tol = dtype === "f32" ? 1e-5 : 1e-13;
            expectClose(y.toArray(), bmmRef(a, b, transA, transB), (e) => tol * (1 + Math.abs(e)), `${ba}×${bb}`);
          });
        }
      }
    }
  });

  it("matches finite differences in f64 (batched, shared a, shared b, transposes)", () => {
    for (const [transA, transB] of FLAGS) {
      for (const [ba, bb] of [
        [[2], [2]],
        [[3], []],
        [[], [3]],
        [
          [2, 2],
          [2, 2],
        ],
      ]) {
        scope(() => {
          const w = randTensor(rng, [...(ba.length ? ba : bb), 3, 2]);
          gradCheck(
            { a: randTensor(rng, stored(ba, 3, 4, transA)), b: randTensor(rng, stored(bb, 4, 2, transB)) },
            (p) => sum(mul(bmm(p.a, p.b, { transA, transB }), w)),
          );
        });
      }
    }
  });

  it("matmul with a 3-D operand is bmm; a bias there is refused", () =>
    scope(() => {
      const a = randTensor(rng, [2, 3, 4]);
      const b = randTensor(rng, [4, 5]);
      expect(matmul(a, b).toArray()).toEqual(bmm(a, b).toArray());
      const w = randTensor(rng, [2, 3, 5]);
      gradCheck({ a: randTensor(rng, [2, 3, 4]), b: randTensor(rng, [2, 5, 4]) }, (p) =>
        sum(mul(matmul(p.a, p.b, { transB: true }), w)),
      );
      expect(() => matmul(a, b, { bias: randTensor(rng, [5]) })).toThrow(
        "plait: matmul: option bias is for 2-D products; add it after a batched one",
      );
    }));

  it("an operand used twice (a · aᵀ) gets both gradient terms", () =>
    scope(() => {
      const w = randTensor(rng, [2, 3, 3]);
      gradCheck({ a: randTensor(rng, [2, 3, 4]) }, (p) => sum(mul(bmm(p.a, p.a, { transB: true }), w)));
    }));

  it("a half operand rounds the other to it and gives an f32 product (f16, bf16)", () => {
    for (const half of ["f16", "bf16"] as const) {
      scope(() => {
        const a = randTensor(rng, [2, 3, 5], "f32");
        const b = randTensor(rng, [2, 5, 4], half);
        const y = bmm(a, b);
        expect(y.dtype).toBe("f32");
        const aRounded = tensor(a.toArray(), a.shape as number[], { dtype: half });
        const want = bmmRef(aRounded, b, false, false);
        expectClose(y.toArray(), want, (e) => 1e-5 * (1 + Math.abs(e)), half);
      });
    }
  });

  it("half backward: f32 gradients for an f16 × f32 pair, close to the f64 ones (mixed precision)", () =>
    scope(() => {
      const a64 = randTensor(rng, [2, 3, 5]);
      const b64 = randTensor(rng, [2, 4, 5]);
      const w = randTensor(rng, [2, 3, 4]);
      const w32 = tensor(w.toArray(), [2, 3, 4], { dtype: "f32" });
      const lossFn = (p: any, weights: Tensor) => sum(mul(bmm(p.a, p.b, { transB: true }), weights));
      const exact = valueAndGrad(lossFn)({ a: a64, b: b64 }, w).grads as any;
      const a16 = tensor(a64.toArray(), [2, 3, 5], { dtype: "f16" });
      const b32 = tensor(b64.toArray(), [2, 4, 5], { dtype: "f32" });
      const half = valueAndGrad(lossFn)({ a: a16, b: b32 }, w32, { computeDType: "f16" }).grads as any;
      for (const name of ["a", "b"]) {
        expect(half[name].dtype).toBe("f32");
        expectClose(half[name].toArray(), exact[name].toArray(), (e) => 1e-2 * (1 + Math.abs(e)), name);
      }
    }));

  it("refuses mismatched batches, inner dimensions, ranks and dtypes, naming both shapes and the rule", () =>
    scope(() => {
      const a = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
      expect(() => bmm(a, tensor(new Float32Array(3 * 4 * 5), [3, 4, 5]))).toThrow(
        "plait: bmm: a [2, 3, 4] and b [3, 4, 5]: batch axes [2] and [3] differ; they must be equal, or one operand 2-D (shared over the batch)",
      );
      expect(() => bmm(a, tensor(new Float32Array(2 * 5 * 5), [2, 5, 5]))).toThrow(
        "plait: bmm: a [2, 3, 4] and b [2, 5, 5]: inner dimensions differ (a gives k = 4, b gives k = 5); rule: [..., m, k] × [..., k, n]",
      );
      expect(() => bmm(a, tensor(new Float32Array(2 * 5 * 4), [2, 5, 4]), { transB: false, transA: true })).toThrow(
        "plait: bmm: a [2, 3, 4] (transA) and b [2, 5, 4]: inner dimensions differ (a gives k = 3, b gives k = 5); rule: [..., m, k] × [..., k, n]",
      );
      expect(() => bmm(a, tensor(new Float32Array(4), [4]))).toThrow(
        "plait: bmm: a [2, 3, 4] and b [4]: each operand needs at least 2 axes ([...batch, rows, cols])",
      );
      expect(() => bmm(a, tensor(new Float64Array(2 * 4 * 5), [2, 4, 5]))).toThrow(
        "plait: bmm: arguments a (f32) and b (f64) are not a supported pair; supported: f32×f32, f64×f64, and f16 or bf16 with itself or f32",
      );
      expect(() => bmm(a, tensor(new Int32Array(2 * 4 * 5), [2, 4, 5]))).toThrow(
        "plait: bmm: argument b has dtype i32, expected f32 or f64 or f16 or bf16",
      );
    }));
});
