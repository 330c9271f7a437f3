// HalfCopy (src/core/castInto.ts): mixed precision's compute copies, cast when first read. The
// reference is the eager path it replaces, castInto into a half tensor (itself checked against
// numpy's casts in test/round-half.test.ts and the cast suites): a copy reads as that cast bit for
// bit; roundThrough of a copy not cast yet gives the bits of widening the cast without casting it;
// and a 16-mixed / bf16-mixed step on the system BLAS and on the WASM GEMM gives the same loss and
// gradients, bit for bit, with lazy copies as with eagerly cast ones.
import { afterEach, describe, expect, it } from "vitest";
import { castInto, HalfCopy, roundThrough } from "../src/core/castInto.ts";
import { Rng } from "../src/data/rng.ts";
import { configure, runtime, scope, Tensor, type Tree, tensor, treeLeaves } from "../src/index.ts";
import { mlp } from "../src/nn/mlp.ts";
import { softmaxCrossEntropy } from "../src/ops/loss.ts";
import { valueAndGrad } from "../src/ops/valueAndGrad.ts";
import { firstDiff } from "./bits.ts";
import { skipBlas } from "./native.ts";

configure({ threads: 3, blas: "auto" }); // the large copies split over three kernel threads

afterEach(() => configure({ blas: "auto" }));

const HALVES = ["f16", "bf16"] as const;
const LARGE = 400_003; // above 3 × 2^17: the threaded path, with a ragged last part

/** f32 values over every range a half meets: normal, subnormal in half, past f16's overflow, inf, NaN. */
function source(n: number, seed: number): Tensor {
  const rng = new Rng(seed);
  const t = new Tensor([n], "f32");
  const v = t.data() as Float32Array;
  for (let i = 0; i < n; i++) v[i] = rng.normal() * 2 ** ((i % 41) - 28);
  for (const [i, x] of [70000, -1e-9, Number.POSITIVE_INFINITY, Number.NaN, 65519.99, -0].entries()) v[i * 997] = x;
  return t;
}

const bits = (t: Tensor) => new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength).slice();

describe("HalfCopy", () => {
  for (const half of HALVES) {
    it(`${half}: reads as castInto's cast, cast once when first read`, () =>
      scope(() => {
        const src = source(LARGE, 1);
        const copy = new HalfCopy(src, half);
        expect([copy.dtype, copy.shape, copy.pending]).toEqual([half, [LARGE], src]);
        const eager = new Tensor([LARGE], half);
        castInto(src, eager);
        const want = bits(eager);
        expect(firstDiff(bits(copy), want)).toBe(-1);
        expect(copy.pending).toBeUndefined();
        (src.data() as Float32Array).fill(1); // the source changes after the cast: the copy does not
        expect(firstDiff(bits(copy), want)).toBe(-1);
      }));

    it(`${half}: roundThrough rounds a copy's source in one pass, as widening the cast would, and leaves it uncast`, () =>
      scope(() => {
        const src = source(LARGE, 2);
        const copy = new HalfCopy(src, half);
        const eager = new Tensor([LARGE], half);
        castInto(src, eager);
        const want = bits(roundThrough(eager, half));
        expect(firstDiff(bits(roundThrough(copy, half)), want)).toBe(-1);
        expect(copy.pending).toBe(src);
        copy.data(); // once cast, roundThrough widens the copy itself: the same bits
        expect(copy.pending).toBeUndefined();
        expect(firstDiff(bits(roundThrough(copy, half)), want)).toBe(-1);
      }));
  }

  it("throws when read after its source was disposed, and disposes uncast", () =>
    scope(() => {
      const src = source(16, 3);
      const copy = new HalfCopy(src, "f16");
      src.dispose();
      expect(() => copy.data()).toThrow("plait: tensor f32[16] was used after dispose()");
      expect(copy.pending).toBe(src); // still uncast: a later read fails the same way, never reads junk
      expect(() => roundThrough(copy, "f16")).toThrow("used after dispose()");
      copy.dispose();
      expect([copy.disposed, copy.pending]).toEqual([true, undefined]);
      expect(() => copy.ptr).toThrow("plait: tensor f16[16] was used after dispose()");
    }));

  it("refuses a source that is not f32 and a dtype that is not f16 or bf16", () =>
    scope(() => {
      expect(() => new HalfCopy(new Tensor([2], "f64"), "f16")).toThrow(
        "plait: HalfCopy: casts an f32 tensor to f16 or bf16, got f64[2] → f16",
      );
      expect(() => new HalfCopy(new Tensor([2], "f32"), "f32" as never)).toThrow(
        "plait: HalfCopy: casts an f32 tensor to f16 or bf16, got f32[2] → f32",
      );
    }));
});

/** Loss and gradient bits of one mixed step of a small MLP, with the weights as lazy or eager half copies. */
function stepBits(half: "f16" | "bf16", lazy: boolean): Uint8Array[] {
  return scope(() => {
    const model = mlp([40, 24, 5]);
    const masters = model.init(new Rng(4));
    const rng = new Rng(5);
    const x = tensor(
      Float32Array.from({ length: 16 * 40 }, () => rng.normal()),
      [16, 40],
    );
    const y = tensor(
      Int32Array.from({ length: 16 }, (_, i) => i % 5),
      [16],
      { dtype: "i32" },
    );
    const copyOf = (m: Tensor) => {
      if (m.ndim < 2) return m;
      if (lazy) return new HalfCopy(m, half);
      const c = new Tensor(m.shape, half);
      castInto(m, c);
      return c;
    };
    const copies = masters.layers.map((l) => ({
      w: copyOf(l.w),
      b: copyOf(l.b),
    }));
    const { loss, grads } = valueAndGrad((p: Tree, b: { x: Tensor; y: Tensor }) =>
      softmaxCrossEntropy(model.apply(p, b.x), b.y),
    )({ layers: copies } as unknown as Tree, { x, y }, { computeDType: half });
    return [new Uint8Array(new Float64Array([loss]).buffer), ...treeLeaves(grads as Tree).map(bits)];
  });
}

describe("a mixed step with lazy copies", () => {
  for (const half of HALVES) {
    it.skipIf(skipBlas())(
      `${half}: on the system BLAS, the loss and gradients of eagerly cast copies, bit for bit`,
      () => {
        expect(stepBits(half, true)).toEqual(stepBits(half, false));
      },
    );

    it(`${half}: on the WASM GEMM, the loss and gradients of eagerly cast copies, bit for bit`, () => {
      configure({ blas: "off" });
      expect(stepBits(half, true)).toEqual(stepBits(half, false));
    });
  }
});
