import { describe, expect, it } from "vitest";
import { full, ones } from "../src/core/fill.ts";
import { runtime } from "../src/core/runtime.ts";
import { keep, scope } from "../src/core/scope.ts";
import { Tensor, tensor, zeros } from "../src/core/tensor.ts";

describe("tensor", () => {
  it("copies typed arrays, numbers and nested arrays in and out", () => {
    const a = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(a.shape).toEqual([2, 3]);
    expect(a.dtype).toBe("f32");
    expect(Array.from(a.toFloat32Array())).toEqual([1, 2, 3, 4, 5, 6]);
    const b = tensor([
      [1, 2],
      [3, 4.5],
    ]);
    expect(b.shape).toEqual([2, 2]);
    expect(b.toArray()).toEqual([1, 2, 3, 4.5]);
    const c = tensor([1.1, -2], [2], { dtype: "f64" });
    expect(c.toArray()).toEqual([1.1, -2]);
    const d = tensor([7, -8], [2], { dtype: "i32" });
    expect(d.data()).toBeInstanceOf(Int32Array);
    expect(tensor(3).shape).toEqual([]);
    for (const t of [a, b, c, d]) t.dispose();
  });

  it("rounds numbers into f16/bf16 and keeps Uint16Array input as bit patterns", () => {
    const h = tensor([1, 65504, 1e-8, 0.1], [4], { dtype: "f16" });
    expect(Array.from(h.data())).toEqual([0x3c00, 0x7bff, 0x0000, 0x2e66]);
    const bf = tensor([1, -2, 3.3], [3], { dtype: "bf16" });
    expect(Array.from(bf.data())).toEqual([0x3f80, 0xc000, 0x4053]);
    const raw = tensor(new Uint16Array([0x7e00]), [1], { dtype: "f16" });
    expect(raw.toArray()[0]).toBeNaN();
    for (const t of [h, bf, raw]) t.dispose();
  });

  it("rejects wrong-length, ragged and non-numeric data with clear errors", () => {
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(/got 5 values for shape \[2, 3\] \(6 elements\)/);
    expect(() => tensor([[1, 2], [3]] as any)).toThrow(/ragged: data\[1\] should be an array of 2, got length 1/);
    expect(() => tensor([1, "x"] as any, [2])).toThrow(/data\[1\] is not a number/);
    expect(() => tensor([1], [-1])).toThrow(/shape must be an array of non-negative integers/);
    expect(() => tensor([1], [1], { dtype: "f8" as any })).toThrow(
      /dtype must be one of f64, f32, f16, bf16, i32, u8, got "f8"/,
    );
  });

  it("takes its dtype from a Float32/Float64/Int32/Uint8Array, refusing other typed arrays without one", () => {
    const cases = [
      [new Float32Array([1.5, -2]), "f32", [1.5, -2]],
      [new Float64Array([0.1, 2 ** 40 + 0.5]), "f64", [0.1, 2 ** 40 + 0.5]],
      [new Int32Array([2 ** 31 - 1, -7]), "i32", [2 ** 31 - 1, -7]],
      [new Uint8Array([255, 3]), "u8", [255, 3]],
    ] as const;
    for (const [data, dtype, values] of cases) {
      const t = tensor(data);
      expect(t.dtype).toBe(dtype);
      expect(t.toArray()).toEqual(values); // no trip through f32: 0.1 and 2^31 − 1 stay exact
      t.dispose();
    }
    for (const data of [new Uint16Array(2), new Int16Array(2), new Int8Array(2), new Uint32Array(2)]) {
      expect(() => tensor(data as any)).toThrow(
        new RegExp(
          `cannot infer a dtype from a ${data.constructor.name}.*pass \\{ dtype \\} \\(one of f64, f32, f16, bf16, i32, u8\\)`,
        ),
      );
    }
    expect(() => tensor(new Uint16Array(1))).toThrow(/f16 or bf16 bit patterns: say which/);
    expect(() => tensor(new BigInt64Array(1) as any, [1], { dtype: "f32" })).toThrow(/BigInt64Array/);
    // An explicit dtype converts, as before.
    const c = tensor(new Int16Array([-3, 4]) as any, [2], { dtype: "f32" });
    expect([c.dtype, ...c.toArray()]).toEqual(["f32", -3, 4]);
    const i = tensor(new Float64Array([1, 2]), [2], { dtype: "i32" });
    expect(i.dtype).toBe("i32");
    c.dispose();
    i.dispose();
  });

  it("names the dtype argument and the allowed dtypes in zeros, full, ones and new Tensor", () => {
    const allowed = 'must be one of f64, f32, f16, bf16, i32, u8, got "f8"';
    expect(() => zeros([2], { dtype: "f8" as any })).toThrow(`zeros() option dtype ${allowed}`);
    expect(() => full([2], 1, { dtype: "f8" as any })).toThrow(`full() option dtype ${allowed}`);
    expect(() => ones([2], { dtype: "f8" as any })).toThrow(`ones() option dtype ${allowed}`);
    expect(() => new Tensor([2], "f8" as any)).toThrow(`new Tensor() argument dtype ${allowed}`);
    expect(() => zeros([2], { dtype: "float32" as any })).toThrow(
      /zeros\(\) option dtype must be one of .*got "float32"/,
    );
    const before = runtime().arena.bytesInUse;
    expect(() => zeros([2], { dtype: undefined as any, dtype2: "f32" } as any)).toThrow(/unknown option dtype2/);
    expect(runtime().arena.bytesInUse).toBe(before);
    scope(() => {
      expect(zeros([3], { dtype: "i32" }).dtype).toBe("i32");
      expect(ones([2], { dtype: "f64" }).toArray()).toEqual([1, 1]);
    });
  });

  it("throws on use after dispose, and dispose is idempotent", () => {
    const t = zeros([4]);
    t.dispose();
    t.dispose();
    expect(() => t.ptr).toThrow(/f32\[4\] was used after dispose/);
    expect(() => t.toArray()).toThrow(/used after dispose/);
  });

  it("frees its bytes on dispose, with `using`, and at the end of a scope", () => {
    const arena = runtime().arena;
    const before = arena.bytesInUse;
    {
      using _t = zeros([1000]);
      expect(arena.bytesInUse).toBeGreaterThan(before);
    }
    expect(arena.bytesInUse).toBe(before);
    const kept = scope(() => {
      zeros([10]);
      const inner = scope(() => [zeros([3]), { x: zeros([5]) }] as const);
      zeros([7]);
      return inner[1];
    });
    expect(kept.x.shape).toEqual([5]);
    expect(kept.x.disposed).toBe(false);
    kept.x.dispose();
    expect(arena.bytesInUse).toBe(before);
  });

  it("keep() lets a tensor outlive every scope; throwing inside a scope still frees", () => {
    const arena = runtime().arena;
    const before = arena.bytesInUse;
    let kept: Tensor | undefined;
    scope(() => {
      kept = keep(zeros([8]));
    });
    expect(kept?.disposed).toBe(false);
    kept?.dispose();
    expect(() =>
      scope(() => {
        zeros([100]);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(arena.bytesInUse).toBe(before);
  });

  it("closes an async scope when its promise settles", async () => {
    const arena = runtime().arena;
    const before = arena.bytesInUse;
    const out = await scope(async () => {
      zeros([100]);
      await new Promise((r) => setTimeout(r, 1));
      return zeros([2]);
    });
    expect(arena.bytesInUse).toBe(before + 64);
    out.dispose();
  });
});
