// Reductions against float64 references (sums against an exactly rounded fsum), at every SIMD
// tail size and the threaded size, with the error bounds kernels/as/reduce.ts states.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allFinite, max, maxAbs, mean, sum, sumSquares } from "../src/core/ops.ts";
import { configure, runtime, scope, type Tensor, tensor, zeros } from "../src/index.ts";
import { EDGES, fsum, randomF32, rng, SIZES, U32, U64 } from "./elementwise-ref.ts";

configure({ threads: 2 }); // the largest size then runs split over two threads

/** The stated bounds: |sum − Σx| ≤ B·Σ|x| (squares: ≤ B·Σx²). */
const SUM_F32 = 17.1 * U32;
const SQUARES_F32 = 18.1 * U32;
const SUM_F64 = 22 * U64;
const SQUARES_F64 = 23 * U64;

const same = (a: number, b: number) => (Number.isNaN(b) ? Number.isNaN(a) : a === b);
const abs = (x: ArrayLike<number>) => Array.from(x, Math.abs);
const squares = (x: ArrayLike<number>) => Array.from(x, (v) => v * v);
const f64 = (x: Float64Array) => tensor(x, [x.length], { dtype: "f64" });

/** Data sets that stress a sum: mixed signs over 2^±20, all positive, and big cancelling pairs. */
function datasets(n: number): Float32Array[] {
  const r = rng(n + 99);
  const cancel = Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * 2 ** 20 + r());
  return [randomF32(n, n + 40, { range: 20 }), randomF32(n, n + 41, { positive: true, range: 2 }), cancel];
}

describe("sum and mean", () => {
  it("f32 sum within 17.1·2⁻²⁴·Σ|x| of the exact sum, whatever n", () =>
    scope(() => {
      for (const n of SIZES) {
        for (const x of datasets(n)) {
          const got = sum(tensor(x));
          const err = Math.abs(got - fsum(x));
          expect(err, `n=${n}`).toBeLessThanOrEqual(SUM_F32 * fsum(abs(x)));
        }
      }
    }));

  it("f64 sum within 22·2⁻⁵³·Σ|x| of the exact sum", () =>
    scope(() => {
      for (const n of SIZES) {
        const r = rng(n + 42);
        const x = Float64Array.from(randomF32(n, n + 43, { range: 30 }), (v) => v * (1 + r() * 2 ** -30));
        const err = Math.abs(sum(f64(x)) - fsum(x));
        expect(err, `n=${n}`).toBeLessThanOrEqual(SUM_F64 * fsum(abs(x)));
      }
    }));

  it("mean is the sum over n (f32, f64); NaN for an empty tensor", () =>
    scope(() => {
      for (const n of SIZES.slice(1)) {
        const x = randomF32(n, n + 44);
        expect(Math.abs(mean(tensor(x)) - fsum(x) / n)).toBeLessThanOrEqual((SUM_F32 * fsum(abs(x))) / n + U64);
        const d = Float64Array.from(x);
        expect(Math.abs(mean(f64(d)) - fsum(d) / n)).toBeLessThanOrEqual((SUM_F64 * fsum(abs(d))) / n);
      }
      expect(mean(zeros([0]))).toBeNaN();
      expect(sum(zeros([0]))).toBe(0);
    }));

  it("sums propagate NaN and infinities, wherever they sit", () =>
    scope(() => {
      const n = 300_001;
      for (const at of [0, 5, n - 1, n - 200_000]) {
        const x = randomF32(n, at);
        x[at] = Number.NaN;
        expect(sum(tensor(x))).toBeNaN();
        x[at] = Number.NEGATIVE_INFINITY;
        expect(sum(tensor(x))).toBe(Number.NEGATIVE_INFINITY);
        expect(sumSquares(tensor(x))).toBe(Number.POSITIVE_INFINITY);
        x[(at + 7) % n] = Number.POSITIVE_INFINITY;
        expect(sum(tensor(x))).toBeNaN();
      }
    }));

  it("gives the same bits on every call (fixed combination order)", () =>
    scope(() => {
      const x = tensor(randomF32(1_000_003, 45, { range: 30 }));
      const first = sum(x);
      for (let k = 0; k < 5; k++) expect(sum(x)).toBe(first);
    }));

  it("f32 sum stays within the bound for any finite f32 array (property)", () => {
    fc.assert(
      fc.property(fc.float32Array({ noDefaultInfinity: true, noNaN: true, maxLength: 600 }), (x) =>
        scope(() => {
          const s = fsum(abs(x));
          fc.pre(Number.isFinite(s) && s < 3e38); // no f32 partial can overflow
          expect(Math.abs(sum(tensor(x)) - fsum(x))).toBeLessThanOrEqual(SUM_F32 * s);
        }),
      ),
    );
  });
});

describe("sumSquares", () => {
  it("f32 within 18.1·2⁻²⁴·Σx², f64 within 23·2⁻⁵³·Σx²", () =>
    scope(() => {
      for (const n of SIZES) {
        const x = randomF32(n, n + 46, { range: 20 });
        const sq = squares(x); // exact in float64
        expect(Math.abs(sumSquares(tensor(x)) - fsum(sq)), `n=${n}`).toBeLessThanOrEqual(SQUARES_F32 * fsum(sq));
        const r = rng(n + 47);
        const d = Float64Array.from(x, (v) => v * (1 + r() * 2 ** -30));
        const sqd = squares(d);
        expect(Math.abs(sumSquares(f64(d)) - fsum(sqd)), `f64 n=${n}`).toBeLessThanOrEqual(SQUARES_F64 * fsum(sqd));
      }
    }));

  it("overflows to inf like any f32 accumulation, NaN propagates", () =>
    scope(() => {
      expect(sumSquares(tensor([1e20, 1, 2, 3, 4]))).toBe(Number.POSITIVE_INFINITY);
      expect(sumSquares(tensor([1, 2, Number.NaN, 3, 4]))).toBeNaN();
      expect(sumSquares(zeros([0]))).toBe(0);
    }));
});

describe("max, maxAbs, allFinite", () => {
  const refMax = (x: Float32Array) => x.reduce((m, v) => Math.max(m, v), Number.NEGATIVE_INFINITY);
  const refMaxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const refFinite = (x: Float32Array) => x.every(Number.isFinite);
  const check = (t: Tensor, what: string) => {
    const x = t.data() as Float32Array;
    if (x.length > 0) expect(same(max(t), refMax(x)), `max ${what}: ${max(t)} vs ${refMax(x)}`).toBe(true);
    expect(same(maxAbs(t), refMaxAbs(x)), `maxAbs ${what}: ${maxAbs(t)} vs ${refMaxAbs(x)}`).toBe(true);
    expect(allFinite(t), `allFinite ${what}`).toBe(refFinite(x));
  };

  it("equal the float64 reference at every size, finite data", () =>
    scope(() => {
      for (const n of SIZES) check(tensor(randomF32(n, n + 48, { range: 30 })), `n=${n}`);
    }));

  it("see each edge value wherever it sits (SIMD body, scalar tail, second thread)", () =>
    scope(() => {
      for (const n of [1, 3, 17, 1023, 300_001]) {
        const t = tensor(randomF32(n, n + 49, { range: 3 }));
        const x = t.data();
        for (const at of new Set([0, n - 1, Math.floor(n / 2), Math.max(0, n - 3), (n * 3) >> 2])) {
          const keep = x[at];
          for (const e of EDGES) {
            x[at] = e;
            check(t, `n=${n}, x[${at}] = ${e}`);
          }
          x[at] = keep;
        }
      }
    }));

  it("max of all -inf is -inf; maxAbs of an empty tensor is 0; allFinite of it true", () =>
    scope(() => {
      expect(max(tensor(new Float32Array(9).fill(Number.NEGATIVE_INFINITY)))).toBe(Number.NEGATIVE_INFINITY);
      expect(maxAbs(zeros([0]))).toBe(0);
      expect(allFinite(zeros([2, 0]))).toBe(true);
    }));

  it("agree with the reference for any f32 array (property)", () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 100 }), (x) => scope(() => check(tensor(x), "property"))),
    );
  });
});

describe("bad input", () => {
  it("names the op, the argument and the dtype", () =>
    scope(() => {
      expect(() => max(zeros([0]))).toThrow("plait: max: argument x is empty (shape [0])");
      expect(() => max(zeros([2], { dtype: "f64" }))).toThrow("plait: max: argument x has dtype f64; max supports f32");
      expect(() => sum(zeros([2], { dtype: "i32" }))).toThrow(
        "plait: sum: argument x has dtype i32; sum supports f32, f64",
      );
      expect(() => allFinite(new Float32Array(2) as unknown as Tensor)).toThrow(
        "plait: allFinite: argument x must be a Tensor, got Float32Array",
      );
    }));

  it("runs on the two-thread pool this file configures", () => {
    expect(runtime().pool.size).toBe(2);
  });
});
