// Elementwise arithmetic (f32, f64), relu and the exactly-rounded backward forms against float64
// references, at every SIMD tail size and the threaded size, with edge values mixed in.
// (exp, log, tanh, sigmoid, gelu: elementwise-math.test.ts.)
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { relu } from "../src/core/activation.ts";
import { reluBackward, sigmoidBackward, tanhBackward } from "../src/core/activation-backward.ts";
import { add, axpy, div, fma, mul, scale, sub } from "../src/core/arith.ts";
import { configure, runtime, scope, type Tensor, tensor, zeros } from "../src/index.ts";
import { checkAll, MIN_SUBNORMAL, randomF32, rng, SIZES, U32, U64 } from "./elementwise-ref.ts";

configure({ threads: 2 }); // the largest size then runs split over two threads

const f32 = Math.fround;
const show =
  (...xs: ArrayLike<number>[]) =>
  (i: number) =>
    xs.map((x) => x[i]).join(", ");

/** f64 test data: the f32 data with low bits that no f32 has. */
function randomF64(n: number, seed: number): Float64Array {
  const r = rng(seed ^ 0x5bd1e995);
  return Float64Array.from(randomF32(n, seed, { edges: 0.05 }), (v) =>
    Number.isFinite(v) ? v * (1 + r() * 2 ** -30) : v,
  );
}

const BINARY = {
  add: [add, (x: number, y: number) => x + y],
  sub: [sub, (x: number, y: number) => x - y],
  mul: [mul, (x: number, y: number) => x * y],
  div: [div, (x: number, y: number) => x / y],
} as const;

describe("add, sub, mul, div", () => {
  for (const [name, [op, ref]] of Object.entries(BINARY)) {
    it(`${name} f32 is the float64 result rounded to f32, at every size`, () =>
      scope(() => {
        for (const n of SIZES) {
          const a = randomF32(n, n + 1, { edges: 0.05 });
          const b = randomF32(n, n + 2, { edges: 0.05 });
          const got = op(tensor(a), tensor(b)).toFloat32Array();
          checkAll(
            `${name} n=${n}`,
            got,
            (i) => f32(ref(a[i], b[i])),
            () => 0,
            show(a, b),
          );
        }
      }));

    it(`${name} f64 is the float64 result, at every size`, () =>
      scope(() => {
        for (const n of SIZES) {
          const a = randomF64(n, n + 3);
          const b = randomF64(n, n + 4);
          const c = op(tensor(a, [n], { dtype: "f64" }), tensor(b, [n], { dtype: "f64" }));
          expect(c.dtype).toBe("f64");
          checkAll(
            `${name} f64 n=${n}`,
            c.data(),
            (i) => ref(a[i], b[i]),
            () => 0,
            show(a, b),
          );
        }
      }));
  }

  it("add matches the f32 reference and commutes for any f32 arrays (property)", () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 70 }), fc.float32Array({ maxLength: 70 }), (x, y) =>
        scope(() => {
          const n = Math.min(x.length, y.length);
          const a = x.subarray(0, n);
          const b = y.subarray(0, n);
          const ab = add(tensor(a), tensor(b)).toFloat32Array();
          const ba = add(tensor(b), tensor(a)).toFloat32Array();
          checkAll(
            "add",
            ab,
            (i) => f32(a[i] + b[i]),
            () => 0,
          );
          expect(ba).toEqual(ab);
        }),
      ),
    );
  });

  it("writes into out, which may be an input", () =>
    scope(() => {
      const a = tensor([1, 2, 3, 4, 5]);
      const b = tensor([10, 20, 30, 40, 50]);
      const out = zeros([5]);
      expect(add(a, b, out)).toBe(out);
      expect(out.toArray()).toEqual([11, 22, 33, 44, 55]);
      expect(mul(a, b, a)).toBe(a);
      expect(a.toArray()).toEqual([10, 40, 90, 160, 250]);
    }));
});

describe("scale, axpy, fma", () => {
  it("scale: x·s with s rounded to the dtype, f32 and f64", () =>
    scope(() => {
      for (const n of SIZES) {
        for (const s of [0.37, -3, 0, Number.POSITIVE_INFINITY]) {
          const x = randomF32(n, n + 5, { edges: 0.05 });
          checkAll(
            `scale f32 n=${n} s=${s}`,
            scale(tensor(x), s).toFloat32Array(),
            (i) => f32(x[i] * f32(s)),
            () => 0,
          );
          const y = randomF64(n, n + 6);
          const t = scale(tensor(y, [n], { dtype: "f64" }), s);
          checkAll(
            `scale f64 n=${n} s=${s}`,
            t.data(),
            (i) => y[i] * s,
            () => 0,
          );
        }
      }
    }));

  // Fused (relaxed build) or not, a·b + c is within one rounding of the product and one of the
  // sum of the exact value; the reference is that value rounded once more.
  const maddTol = (u: number, product: number, ref: number) =>
    u * (Math.abs(product) + 2 * Math.abs(ref)) + (u === U32 ? MIN_SUBNORMAL : 0);

  it("axpy: y ← alpha·x + y in place, f32 and f64", () =>
    scope(() => {
      for (const n of SIZES) {
        const alpha = -0.75;
        const x = randomF32(n, n + 7, { edges: 0.05 });
        const y0 = randomF32(n, n + 8, { edges: 0.05 });
        const y = tensor(y0);
        expect(axpy(alpha, tensor(x), y)).toBe(y);
        checkAll(
          `axpy f32 n=${n}`,
          y.toFloat32Array(),
          (i) => f32(alpha * x[i] + y0[i]),
          (i, r) => maddTol(U32, alpha * x[i], r),
          show(x, y0),
        );
        const xd = randomF64(n, n + 9);
        const yd0 = randomF64(n, n + 10);
        const yd = tensor(yd0, [n], { dtype: "f64" });
        axpy(alpha, tensor(xd, [n], { dtype: "f64" }), yd);
        checkAll(
          `axpy f64 n=${n}`,
          yd.data(),
          (i) => alpha * xd[i] + yd0[i],
          (i, r) => maddTol(U64, alpha * xd[i], r),
        );
      }
    }));

  it("fma: a·b + c, f32 and f64", () =>
    scope(() => {
      for (const n of SIZES) {
        // magnitudes that cannot overflow in the product, so fused and unfused agree on inf
        const [a, b, c] = [11, 12, 13].map((s) => randomF32(n, n + s, { range: 20, edges: 0.01 }));
        const got = fma(tensor(a), tensor(b), tensor(c)).toFloat32Array();
        checkAll(
          `fma f32 n=${n}`,
          got,
          (i) => f32(a[i] * b[i] + c[i]),
          (i, r) => maddTol(U32, a[i] * b[i], r),
          show(a, b, c),
        );
        const [ad, bd, cd] = [14, 15, 16].map((s) => randomF64(n, n + s));
        const t = (v: Float64Array) => tensor(v, [n], { dtype: "f64" });
        checkAll(
          `fma f64 n=${n}`,
          fma(t(ad), t(bd), t(cd)).data(),
          (i) => ad[i] * bd[i] + cd[i],
          (i, r) => maddTol(U64, ad[i] * bd[i], r),
        );
      }
    }));
});

describe("relu and the backward forms", () => {
  it("relu: x > 0 ? x : 0, NaN kept", () =>
    scope(() => {
      for (const n of SIZES) {
        const x = randomF32(n, n + 17, { edges: 0.1 });
        const ref = (i: number) => (Number.isNaN(x[i]) ? Number.NaN : Math.max(x[i], 0));
        checkAll(`relu n=${n}`, relu(tensor(x)).toFloat32Array(), ref, () => 0);
      }
    }));

  it("reluBackward: dy where x > 0, else 0", () =>
    scope(() => {
      for (const n of SIZES) {
        const x = randomF32(n, n + 18, { edges: 0.1 });
        const dy = randomF32(n, n + 19, { edges: 0.1 });
        const got = reluBackward(tensor(x), tensor(dy)).toFloat32Array();
        checkAll(
          `reluBackward n=${n}`,
          got,
          (i) => (x[i] > 0 ? dy[i] : 0),
          () => 0,
          show(x, dy),
        );
      }
    }));

  // y in [-1, 1] (tanh's range) or [0, 1] (sigmoid's), with the ends and NaN mixed in
  function outputs(n: number, seed: number, lo: number): Float32Array {
    const r = rng(seed);
    const ends = [lo, 1, 0, Number.NaN, f32(1 - 2 ** -24), f32(lo + 2 ** -24)];
    return Float32Array.from({ length: n }, () =>
      r() < 0.05 ? ends[Math.floor(r() * ends.length)] : lo + (1 - lo) * r(),
    );
  }

  it("tanhBackward: dy·(1 − y²) within 4 roundings", () =>
    scope(() => {
      for (const n of SIZES) {
        const y = outputs(n, n + 20, -1);
        const dy = randomF32(n, n + 21, { edges: 0.05 });
        const got = tanhBackward(tensor(y), tensor(dy)).toFloat32Array();
        checkAll(
          `tanhBackward n=${n}`,
          got,
          (i) => dy[i] * (1 - y[i] * y[i]),
          (_, r) => 4 * U32 * Math.abs(r) + MIN_SUBNORMAL,
          show(y, dy),
        );
      }
    }));

  it("sigmoidBackward: dy·y·(1 − y) within 3 roundings", () =>
    scope(() => {
      for (const n of SIZES) {
        const y = outputs(n, n + 22, 0);
        const dy = randomF32(n, n + 23, { edges: 0.05 });
        const got = sigmoidBackward(tensor(y), tensor(dy)).toFloat32Array();
        checkAll(
          `sigmoidBackward n=${n}`,
          got,
          (i) => dy[i] * y[i] * (1 - y[i]),
          (_, r) => 3 * U32 * Math.abs(r) + MIN_SUBNORMAL,
          show(y, dy),
        );
      }
    }));
});

describe("bad input", () => {
  it("names the op, the argument and both shapes or dtypes", () =>
    scope(() => {
      const a = zeros([3, 5]);
      expect(() => add(a, zeros([3, 4]))).toThrow("plait: add: argument b has shape [3, 4], expected [3, 5] like a");
      expect(() => mul(a, zeros([3, 5], { dtype: "f64" }))).toThrow(
        "plait: mul: argument b has dtype f64, expected f32 like a",
      );
      expect(() => sub(zeros([2], { dtype: "i32" }), zeros([2], { dtype: "i32" }))).toThrow(
        "plait: sub: argument a has dtype i32; sub supports f32, f64",
      );
      expect(() => relu(zeros([2], { dtype: "i32" }))).toThrow(
        "plait: relu: argument x has dtype i32; relu supports f32, f64",
      );
      expect(() => fma(a, a, zeros([5, 3]))).toThrow("plait: fma: argument c has shape [5, 3], expected [3, 5] like a");
      expect(() => add(a, a, zeros([15]))).toThrow(
        "plait: add: argument out has shape [15], expected [3, 5] like the input",
      );
      expect(() => axpy(2, a, zeros([5]))).toThrow("plait: axpy: argument y has shape [5], expected [3, 5] like x");
      expect(() => tanhBackward(a, zeros([3]))).toThrow(
        "plait: tanhBackward: argument dy has shape [3], expected [3, 5] like y",
      );
      expect(() => scale([1, 2] as unknown as Tensor, 2)).toThrow(
        "plait: scale: argument x must be a Tensor, got an array",
      );
    }));

  it("refuses a disposed tensor", () => {
    const a = zeros([4]);
    a.dispose();
    expect(() => relu(a)).toThrow(/used after dispose/);
  });

  it("runs on the two-thread pool this file configures", () => {
    expect(runtime().pool.size).toBe(2);
  });
});
