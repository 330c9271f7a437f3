import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { scope, tensor } from "../src/index.ts";
import { add, mul, scale, sub } from "../src/ops/arith.ts";
import { mse } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { gradCheck, randn, randTensor, TAIL_SIZES } from "./ops-gradcheck.ts";

const SPECIAL = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1e-45,
  -1e-40,
  3e38,
  -3e38,
  1.5,
];

/** Values with specials mixed in, so every tail position sees some. */
function mixed(rng: Rng, n: number): Float64Array {
  const v = randn(rng, n, 10);
  for (let i = 0; i < n; i += 3) v[i] = SPECIAL[(i / 3) % SPECIAL.length];
  return v;
}

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe("add with a row broadcast (kernels add_rows, col_sums)", () => {
  const rng = new Rng(9);
  const shapes: [number, number][] = [];
  for (const cols of [...TAIL_SIZES, 1023]) for (const rows of [0, 1, 3, 5]) shapes.push([rows, cols]);
  shapes.push([300, 1023]); // large enough to split over the pool (both kernels)

  for (const dtype of ["f32", "f64"] as const) {
    const round = dtype === "f32" ? Math.fround : (v: number) => v;
    it(`adds b to every row exactly and sums columns in row order (${dtype})`, () => {
      for (const [rows, cols] of shapes) {
        scope(() => {
          const a = tensor(mixed(rng, rows * cols), [rows, cols], { dtype });
          const b = tensor(mixed(rng, cols), [cols], { dtype });
          const av = a.toArray();
          const bv = b.toArray();
          const y = add(a, b).toArray();
          for (let i = 0; i < rows * cols; i++) {
            const want = round(av[i] + bv[i % cols]);
            if (!same(y[i], want)) throw new Error(`[${rows}, ${cols}] element ${i}: got ${y[i]}, expected ${want}`);
          }
        });
      }
    });

    it(`column sums match a sequential ${dtype} sum bit for bit, fresh and accumulated`, () => {
      for (const [rows, cols] of shapes) {
        if (rows * cols === 0) continue; // mse needs elements
        scope(() => {
          // loss = mse(a + b, t): b's gradient is the column sums of dy = 2(y − t)/n
          const a = tensor(randn(rng, rows * cols), [rows, cols], { dtype });
          const t = tensor(randn(rng, rows * cols), [rows, cols], { dtype });
          const b = tensor(randn(rng, cols), [cols], { dtype });
          const n = rows * cols;
          // used twice: the second use accumulates into the first's column sums
          const { grads } = valueAndGrad((p: any) => add(mse(add(a, p.b), t), mse(add(a, p.b), t)))({ b }, undefined);
          const y = add(a, b).toArray();
          const tv = t.toArray();
          const dy = y.map((v, i) => round(round(v - tv[i]) * round(2 / n)));
          const want = new Array(cols).fill(0);
          for (let c = 0; c < cols; c++) {
            let s = 0;
            for (let r = 0; r < rows; r++) s = round(s + dy[r * cols + c]);
            want[c] = s;
          }
          for (let c = 0; c < cols; c++) {
            let s = want[c];
            for (let r = 0; r < rows; r++) s = round(s + dy[r * cols + c]);
            want[c] = s;
          }
          const got = (grads as any).b.toArray();
          for (let c = 0; c < cols; c++) {
            if (!same(got[c], want[c]))
              throw new Error(`[${rows}, ${cols}] column ${c}: got ${got[c]}, expected ${want[c]}`);
          }
        });
      }
    });
  }

  it("takes [1, n] rows too and matches finite differences in f64", () => {
    scope(() => {
      const t = randTensor(rng, [4, 3]);
      gradCheck({ a: randTensor(rng, [4, 3]), b: randTensor(rng, [3]) }, (p) => mse(add(p.a, p.b), t));
      gradCheck({ a: randTensor(rng, [4, 3]), b: randTensor(rng, [1, 3]) }, (p) => mse(add(p.a, p.b), t));
      const t3 = randTensor(rng, [2, 2, 3]);
      gradCheck({ a: randTensor(rng, [2, 2, 3]), b: randTensor(rng, [3]) }, (p) => mse(add(p.a, p.b), t3));
    });
  });
});

describe("add, sub, mul, scale", () => {
  const rng = new Rng(10);

  it("match finite differences in f64, including an input used twice", () => {
    scope(() => {
      const t = randTensor(rng, [3, 5]);
      const p = () => ({ a: randTensor(rng, [3, 5]), b: randTensor(rng, [3, 5]) });
      gradCheck(p(), (q) => mse(add(q.a, q.b), t));
      gradCheck(p(), (q) => mse(sub(q.a, q.b), t));
      gradCheck(p(), (q) => mse(mul(q.a, q.b), t));
      gradCheck(p(), (q) => mse(scale(q.a, -2.5), t));
      gradCheck(p(), (q) => mse(add(q.a, q.a), t));
      gradCheck(p(), (q) => mse(sub(q.a, q.a), t));
      gradCheck(p(), (q) => mse(mul(q.a, q.a), t));
      gradCheck(p(), (q) => mse(mul(add(q.a, q.b), sub(q.b, scale(q.a, 3))), t));
    });
  });

  it("compute the forward with the core kernels (f32 rounding)", () => {
    scope(() => {
      const a = tensor([1.1, -2, 3e38, Number.NaN], [4]);
      const b = tensor([2.2, -0, 3e38, 1], [4]);
      const av = a.toArray();
      const bv = b.toArray();
      const r = Math.fround;
      const check = (got: number[], f: (x: number, y: number) => number) =>
        got.forEach((v, i) => {
          expect(same(v, r(f(av[i], bv[i])))).toBe(true);
        });
      check(add(a, b).toArray(), (x, y) => x + y);
      check(sub(a, b).toArray(), (x, y) => x - y);
      check(mul(a, b).toArray(), (x, y) => x * y);
      check(scale(a, 0.5).toArray(), (x) => x * 0.5);
    });
  });

  it("reject mismatched shapes and dtypes, naming the op and argument", () => {
    scope(() => {
      const a = tensor(new Float32Array(15), [3, 5]);
      expect(() => add(a, tensor(new Float32Array(12), [3, 4]))).toThrow(
        "plait: add: shapes do not broadcast: a [3, 5], b [3, 4] (axis -1 has 5 and 4; numpy rule: aligned at the last axis, each axis equal or 1)",
      );
      expect(() => add(a, tensor(new Float32Array(10), [2, 5]))).toThrow(
        /a \[3, 5\], b \[2, 5\] \(axis -2 has 3 and 2/,
      );
      expect(() => sub(a, tensor(new Float32Array(4), [4]))).toThrow(
        "plait: sub: shapes do not broadcast: a [3, 5], b [4] (axis -1 has 5 and 4; numpy rule: aligned at the last axis, each axis equal or 1)",
      );
      expect(() => mul(a, tensor(new Float64Array(15), [3, 5], { dtype: "f64" }))).toThrow(
        /plait: mul: argument b has dtype f64, expected f32 like a/,
      );
      expect(() => add(tensor([1], [1], { dtype: "i32" }), tensor([1], [1], { dtype: "i32" }))).toThrow(
        /plait: add: argument a has dtype i32, expected f32 or f64/,
      );
      expect(() => scale(a, "2" as any)).toThrow(/plait: scale: argument s must be a number/);
      expect(() => add(a, [1, 2] as any)).toThrow(/plait: add: argument b must be a Tensor, got an array/);
    });
  });
});
