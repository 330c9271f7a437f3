// Tensors on cuda:N without a GPU: device strings, and the whole CudaTensor life cycle (to, back,
// device-to-device, dispose, scope, errors that name both devices) over the fake in-memory device of cuda-fake.ts
// swapped in for the runtime backend. matmul's argument checks on a device run before cuBLAS is
// opened, so they are tested here too.
import { describe, expect, it } from "vitest";
import { parseDevice } from "../src/core/device.ts";
import { add, CudaTensor, matmul, scope, Tensor, tanh, tensor } from "../src/index.ts";
import { useFakeDevice } from "./cuda-fake.ts";

describe("device strings", () => {
  it("accepts cpu, cuda and cuda:N", () => {
    expect(parseDevice("cpu", "x")).toEqual({ kind: "cpu" });
    expect(parseDevice("cuda", "x")).toEqual({ kind: "cuda", index: 0 });
    expect(parseDevice("cuda:3", "x")).toEqual({ kind: "cuda", index: 3 });
  });

  it.each(["gpu", "cuda:-1", "cuda:x", "cuda:", "cuda:01", "CUDA:0", " cuda:0", 0, null, undefined])(
    "refuses %j, naming the argument",
    (bad) => {
      const t = tensor([1, 2]);
      expect(() => t.to(bad as string)).toThrow(/plait: to\(\) argument device must be "cpu", "cuda" or "cuda:N"/);
      expect(() => t.to(bad as string)).toThrow(
        typeof bad === "string"
          ? `got string ${JSON.stringify(bad)}`
          : typeof bad === "number"
            ? `got number ${bad}`
            : `got ${String(bad)}`,
      );
      if (bad !== undefined)
        expect(() => tensor([1], undefined, { device: bad as string })).toThrow(/tensor\(\) option device must be/);
      t.dispose();
    },
  );

  it("a cpu tensor says cpu, and to('cpu') / tensor(…, { device: 'cpu' }) give cpu copies", () => {
    const t = tensor([1, 2, 3], [3], { device: "cpu" });
    expect(t).toBeInstanceOf(Tensor);
    expect(t.device).toBe("cpu");
    const c = t.to("cpu");
    expect(c.ptr).not.toBe(t.ptr);
    expect(c.toArray()).toEqual([1, 2, 3]);
    expect(() => tensor([1], undefined, { device: "cpu", dtyp: "f32" } as never)).toThrow(/unknown option dtyp/);
    t.dispose();
    c.dispose();
  });
});

describe("CudaTensor over a fake device", () => {
  const fake = useFakeDevice({ backendOnly: true });

  it("round-trips every dtype: tensor(…, { device }), .to(), toArray(), .device, describe()", () => {
    for (const dtype of ["f32", "f64", "f16", "bf16", "i32", "u8"] as const) {
      const g = tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype, device: "cuda:1" });
      expect(g).toBeInstanceOf(CudaTensor);
      expect(g).toMatchObject({ device: "cuda:1", deviceIndex: 1, dtype, shape: [2, 3], size: 6 });
      expect(g.describe()).toBe(`${dtype}[2, 3] on cuda:1`);
      expect(typeof g.ptr).toBe("bigint");
      const back = g.to("cpu");
      expect(back).toBeInstanceOf(Tensor);
      expect(back.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(g.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
      const same = g.to("cuda:1");
      expect(same.ptr).not.toBe(g.ptr);
      expect(same.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
      const other = g.to("cuda:0");
      expect(other.device).toBe("cuda:0");
      expect(other.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
      for (const t of [g, back, same, other]) t.dispose();
    }
    expect(fake.blocks.size).toBe(0);
  });

  it("an empty tensor still gets a (1-byte) allocation and round-trips", () => {
    const g = tensor([], [0, 4], { device: "cuda" });
    expect(g.shape).toEqual([0, 4]);
    expect(g.toArray()).toEqual([]);
    g.dispose();
  });

  it("dispose frees once; use after dispose names the tensor; scope frees device tensors too", () => {
    const g = tensor([1, 2], [2], { device: "cuda:0" });
    g.dispose();
    g.dispose();
    expect(() => g.ptr).toThrow(/f32\[2\] on cuda:0 was used after dispose/);
    expect(() => g.to("cpu")).toThrow(/used after dispose/);
    const before = fake.blocks.size;
    const kept = scope(() => {
      tensor([1], [1], { device: "cuda:0" });
      return tensor([2], [1], { device: "cuda:0" });
    });
    expect(fake.blocks.size).toBe(before + 1);
    expect(kept.toArray()).toEqual([2]);
    kept.dispose();
  });

  it("a CPU op given a device tensor names both devices and the fix", () => {
    const a = tensor([1, 2]);
    const b = tensor([3, 4], [2], { device: "cuda:0" });
    expect(() => add(a, b as never)).toThrow(/add: argument b is on cuda:0, but argument a is on cpu.*\.to\("cpu"\)/);
    // an op with no device implementation names the device and the fix
    expect(() => tanh(b as never)).toThrow(
      /tanh: argument x \(f32\[2\] on cuda:0\) is on cuda:0, but tanh runs on cpu.*\.to\("cpu"\)/,
    );
    a.dispose();
    b.dispose();
  });

  it("matmul with operands on two devices names both", () => {
    const a = tensor([[1, 2]]);
    const b = tensor([[1], [2]], undefined, { device: "cuda:0" });
    const c = tensor([[1], [2]], undefined, { device: "cuda:1" });
    expect(() => matmul(a as never, b)).toThrow(/matmul: argument b is on cuda:0, but argument a is on cpu/);
    expect(() => matmul(b, a as never)).toThrow(/matmul: argument b is on cpu, but argument a is on cuda:0/);
    const a0 = a.to("cuda:0");
    expect(() => matmul(a0, c)).toThrow(/argument b is on cuda:1, but argument a is on cuda:0/);
    const bias = tensor([1]);
    expect(() => matmul(a0, b, { bias: bias as never })).toThrow(
      /argument bias is on cpu, but argument a is on cuda:0/,
    );
    for (const t of [a, b, c, a0, bias]) t.dispose();
  });

  it("matmul's argument checks on a device (before cuBLAS opens)", () => {
    const on = (data: number[][], dtype: "f32" | "f16" | "bf16" | "f64" = "f32") =>
      tensor(data, undefined, { dtype, device: "cuda:0" });
    const a = on([[1, 2, 3]]);
    const b = on([[1], [2]]);
    expect(() => matmul(a, b)).toThrow(/inner dimensions differ: a \[1, 3\] gives k = 3, b \[2, 1\] gives k = 2/);
    const h = on([[1], [2], [3]], "f16");
    const hb = on([[1, 2, 3]], "bf16");
    expect(() => matmul(hb, h)).toThrow(/argument b has dtype f16; expected f32 or bf16/);
    const d = on([[1], [2], [3]], "f64");
    expect(() => matmul(d.to("cuda:0"), d)).toThrow(/argument a has dtype f64; expected f32/);
    const v = tensor([1, 2, 3], [3], { device: "cuda:0" });
    expect(() => matmul(v, b)).toThrow(/argument a must be 2-D, got shape \[3\]/);
    const b3 = on([[1], [2], [3]]);
    expect(() => matmul(a, b3, { bias: v })).toThrow(/argument bias has shape \[3\], expected \[1\]/);
    expect(() => matmul(a, b3, { accumulate: true } as never)).toThrow(/unknown option accumulate/);
    expect(() => matmul(a, b3, { trans: true } as never)).toThrow(/unknown option trans/);
    // an empty product needs no library
    const e = matmul(tensor([], [0, 2], { device: "cuda:0" }), tensor([1, 2], [2, 1], { device: "cuda:0" }));
    expect(e.shape).toEqual([0, 1]);
    for (const t of [a, b, h, hb, d, v, b3, e]) t.dispose();
  });
});
