// Row-wise softmax and log-softmax against float64 formulas (x − max computed exactly), for
// column counts that hit every SIMD tail, row counts that reach the threaded split, and rows
// holding NaN, ±inf and huge values.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { logSoftmax, softmax } from "../src/core/softmax.ts"; // the kernels; the differentiable ops: ops-softmax.test.ts
import { configure, scope, type Tensor, tensor, zeros } from "../src/index.ts";
import { checkAll, fsum, MIN_SUBNORMAL, randomF32, U32 } from "./elementwise-ref.ts";

configure({ threads: 2 }); // the largest shapes then run split over two threads

/** Per row: m = max (NaN if the row holds one), e_j = exp(x_j − m) in float64, s = Σ e. */
function rowStats(x: Float32Array, rows: number, cols: number) {
  return Array.from({ length: rows }, (_, r) => {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const m = row.some(Number.isNaN) ? Number.NaN : row.reduce((a, v) => Math.max(a, v), Number.NEGATIVE_INFINITY);
    const s = fsum(Array.from(row, (v) => Math.exp(v - m)));
    return { m, s, ls: Math.log(s) };
  });
}

// Bounds (kernels/as/softmax.ts): exp's 1 ulp, the f32 rounding of x − m (amplified by |x − m|),
// the sum (3·2⁻²⁴), 1/s and the final product: |y − ŷ| ≤ (8 + |x − m|)·2⁻²⁴·ŷ, plus subnormals.
// log-softmax: (x − m) and ln s each rounded, then their difference: ≤ 2·2⁻²⁴·(|x − m| + ln s) + 4·2⁻²⁴.
function check(x: Float32Array, rows: number, cols: number, what: string) {
  const t = tensor(x, [rows, cols]);
  const y = softmax(t);
  const ly = logSoftmax(t);
  expect(y.shape).toEqual([rows, cols]);
  const st = rowStats(x, rows, cols);
  const row = (i: number) => st[Math.floor(i / cols)];
  checkAll(
    `softmax ${what}`,
    y.toFloat32Array(),
    (i) => Math.exp(x[i] - row(i).m) / row(i).s,
    (i, r) => (r === 0 ? 0 : (8 + Math.abs(x[i] - row(i).m)) * U32 * r) + 2 * MIN_SUBNORMAL,
    (i) => `x[${i}] = ${x[i]}, row max ${row(i).m}`,
  );
  checkAll(
    `logSoftmax ${what}`,
    ly.toFloat32Array(),
    (i) => x[i] - row(i).m - row(i).ls,
    (i) => 2 * U32 * (Math.abs(x[i] - row(i).m) + Math.abs(row(i).ls)) + 4 * U32,
    (i) => `x[${i}] = ${x[i]}, row max ${row(i).m}`,
  );
}

describe("softmax and logSoftmax", () => {
  it("match the float64 formulas for every column tail, and on two threads", () =>
    scope(() => {
      for (const cols of [1, 3, 4, 5, 17, 1023]) {
        for (const rows of [1, 3, Math.ceil(300_001 / cols)]) {
          check(randomF32(rows * cols, rows + cols, { range: 4 }), rows, cols, `[${rows}, ${cols}]`);
        }
      }
    }));

  it("stay finite for huge logits (the row max is subtracted first)", () =>
    scope(() => {
      const x = Float32Array.from([3e38, 2.9e38, -3e38, 1e30, 0, 88, 100, 3e38, -1e30]);
      check(x, 3, 3, "huge");
      expect(
        softmax(tensor(x, [3, 3]))
          .toArray()
          .every(Number.isFinite),
      ).toBe(true);
    }));

  it("-inf logits give 0 (log: -inf); rows with NaN, +inf or only -inf are all NaN", () =>
    scope(() => {
      const inf = Number.POSITIVE_INFINITY;
      const rows = [
        [1, -inf, 2, -inf, 3],
        [1, Number.NaN, 2, 3, 4],
        [1, inf, 2, 3, 4],
        [-inf, -inf, -inf, -inf, -inf],
      ];
      const x = tensor(rows);
      const y = softmax(x).toArray();
      const ly = logSoftmax(x).toArray();
      expect(y[1]).toBe(0);
      expect(y[3]).toBe(0);
      expect(ly[1]).toBe(-inf);
      check(Float32Array.from(rows.flat()), 4, 5, "specials");
      for (const v of [...y.slice(5), ...ly.slice(5)]) expect(v).toBeNaN();
    }));

  it("flattens leading axes into rows, writes into out, and handles empty shapes", () =>
    scope(() => {
      const x = randomF32(2 * 3 * 7, 5);
      const y3 = softmax(tensor(x, [2, 3, 7]));
      expect(y3.shape).toEqual([2, 3, 7]);
      expect(y3.toArray()).toEqual(softmax(tensor(x, [6, 7])).toArray());
      const t = tensor(x, [6, 7]);
      expect(logSoftmax(t, t)).toBe(t); // in place
      check(x, 6, 7, "in place reference");
      expect(t.toArray()).toEqual(logSoftmax(tensor(x, [6, 7])).toArray());
      expect(softmax(zeros([0, 4])).shape).toEqual([0, 4]);
      expect(logSoftmax(zeros([3, 0])).shape).toEqual([3, 0]);
      expect(softmax(tensor([2.5])).toArray()).toEqual([1]);
    }));

  it("rows are probability vectors for any finite logits (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.float32Array({ noNaN: true, noDefaultInfinity: true, minLength: 1, maxLength: 200 }),
        (cols, data) =>
          scope(() => {
            const rows = Math.floor(data.length / cols);
            fc.pre(rows > 0);
            const x = data.subarray(0, rows * cols);
            const y = softmax(tensor(x, [rows, cols])).toFloat32Array();
            for (let r = 0; r < rows; r++) {
              const row = y.subarray(r * cols, (r + 1) * cols);
              expect(row.every((v) => v >= 0 && v <= 1)).toBe(true);
              expect(Math.abs(fsum(row) - 1)).toBeLessThanOrEqual(cols * 8 * U32);
            }
            check(x, rows, cols, "property");
          }),
      ),
    );
  });
});

describe("bad input", () => {
  it("names the op, the argument and the problem", () =>
    scope(() => {
      expect(() => softmax(tensor(3, []))).toThrow(
        "plait: softmax: argument x must have at least 1 axis, got shape []",
      );
      expect(() => logSoftmax(zeros([2, 2], { dtype: "f64" }))).toThrow(
        "plait: logSoftmax: argument x has dtype f64; logSoftmax supports f32",
      );
      expect(() => softmax(zeros([2, 3]), zeros([3, 2]))).toThrow(
        "plait: softmax: argument out has shape [3, 2], expected [2, 3] like the input",
      );
      expect(() => softmax({ shape: [2] } as unknown as Tensor)).toThrow(
        "plait: softmax: argument x must be a Tensor, got Object",
      );
    }));
});
