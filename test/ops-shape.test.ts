import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { mse } from "../src/ops/loss.ts";
import { reshape, transpose } from "../src/ops/shape.ts";
import { gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

describe("transpose", () => {
  const rng = new Rng(5);
  const sizes = [...TAIL_SIZES, 64, 300];

  for (const dtype of ["f32", "f64", "i32"] as const) {
    it(`moves every element to [j, i] for every tail of rows and columns (${dtype})`, () => {
      for (const rows of sizes) {
        for (const cols of sizes) {
          if (rows * cols > 100_000) continue;
          scope(() => {
            const x = tensor(
              Array.from(randn(rng, rows * cols, 100), (v) => Math.round(v)),
              [rows, cols],
              { dtype },
            );
            const xv = x.toArray();
            const y = transpose(x);
            expect(y.shape).toEqual([cols, rows]);
            const yv = y.toArray();
            for (let i = 0; i < rows; i++) {
              for (let j = 0; j < cols; j++) {
                if (yv[j * rows + i] !== xv[i * cols + j]) throw new Error(`[${rows}, ${cols}] at (${i}, ${j})`);
              }
            }
          });
        }
      }
    });
  }

  it("keeps NaN, infinities, signed zeros and subnormals bit for bit", () => {
    for (const dtype of ["f32", "f64"] as const) {
      scope(() => {
        const v = [Number.NaN, -0, Number.POSITIVE_INFINITY, 1e-45, Number.NEGATIVE_INFINITY, 7, 3e38, 1e-310];
        const x = tensor(v, [2, 4], { dtype });
        const xv = x.toArray();
        const y = transpose(x).toArray();
        for (let i = 0; i < 2; i++)
          for (let j = 0; j < 4; j++) expect(Object.is(y[j * 2 + i], xv[i * 4 + j])).toBe(true);
      });
    }
  });

  it("matches finite differences in f64", () => {
    scope(() => {
      const target = randTensor(rng, [5, 3]);
      gradCheck({ x: randTensor(rng, [3, 5]) }, (p) => mse(transpose(p.x), target));
    });
  });

  it("rejects other ranks and 2-byte dtypes", () => {
    scope(() => {
      expect(() => transpose(tensor([1, 2, 3], [3]))).toThrow(
        /transpose: argument x must have 2 dimensions, got shape \[3\]/,
      );
      expect(() => transpose(tensor([1, 2], [1, 2], { dtype: "bf16" }))).toThrow(/argument x has dtype bf16/);
    });
  });
});

describe("reshape", () => {
  const rng = new Rng(6);

  it("keeps the elements in order and infers one -1", () => {
    scope(() => {
      const x = tensor(randn(rng, 24), [2, 3, 4], { dtype: "f32" });
      const y = reshape(x, [4, -1]);
      expect(y.shape).toEqual([4, 6]);
      expect(y.toArray()).toEqual(x.toArray());
      expect(reshape(x, [24]).shape).toEqual([24]);
      expect(reshape(tensor([], [0, 3]), [3, 0]).shape).toEqual([3, 0]);
    });
  });

  it("matches finite differences in f64", () => {
    scope(() => {
      const target = randTensor(rng, [6]);
      gradCheck({ x: randTensor(rng, [2, 3]) }, (p) => mse(reshape(p.x, [-1]), target));
    });
  });

  it("rejects shapes that do not fit", () => {
    scope(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => reshape(x, [4, 2])).toThrow(
        /reshape: argument shape \[4, 2\] does not fit the 6 elements of x \[2, 3\]/,
      );
      expect(() => reshape(x, [4, -1])).toThrow(/does not fit the 6 elements/);
      expect(() => reshape(x, [-1, -1])).toThrow(/has more than one -1/);
      expect(() => reshape(x, [2.5, 2] as any)).toThrow(
        /reshape: argument shape must be an array of non-negative integers/,
      );
    });
  });
});
