// valueAndGrad on device params, without a GPU. What this tests is plait's wiring: the public ops
// dispatching to the device ops, the device tape (recording, gradient accumulation into one
// buffer per input, transposes of the matmul backward, freeing), the loss scale seed, the errors.
// The device here is test/cuda-fake.ts: host memory, with JS kernels (the GEMM and casts are
// plait's CPU kernels), so the gradients are compared with plait's CPU valueAndGrad on the same
// values (f32) and with a float64 run (the reference). The real PTX kernels and cuBLAS run in
// test/cuda-gpu.test.ts and test/gpu/run.sh on a GPU.
import { describe, expect, it } from "vitest";
import {
  add,
  CudaTensor,
  cast,
  cuda,
  matmul,
  mean,
  mul,
  relu,
  scale,
  softmaxCrossEntropy,
  sum,
  type Tensor,
  type Tree,
  tanh,
  tensor,
  treeLeaves,
  valueAndGrad,
} from "../src/index.ts";
import { useFakeDevice } from "./cuda-fake.ts";
import { random } from "./gemm-reference.ts";

const fake = useFakeDevice();

/** Deterministic values in [-1, 1). */
const t = (shape: number[], seed: number, dtype: "f32" | "f64" = "f32") => random(shape, dtype, seed);

type Mlp = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

/** The MNIST demo's model and loss, written once for every device. */
const mlpLoss = (p: Tree, b: { x: Tensor; y: Tensor }) => {
  const q = p as Mlp;
  const h = relu(matmul(b.x, q.w1, { bias: q.b1 }));
  return softmaxCrossEntropy(matmul(h, q.w2, { bias: q.b2 }), b.y);
};

function mlpParams(dtype: "f32" | "f64"): Mlp {
  return { w1: t([8, 16], 1, dtype), b1: t([16], 2, dtype), w2: t([16, 4], 3, dtype), b2: t([4], 4, dtype) };
}

const toDev = (tree: Record<string, Tensor>, device = "cuda:0") =>
  Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.to(device)])) as unknown as Record<string, CudaTensor>;

const free = (...trees: unknown[]) => {
  for (const tr of trees) for (const l of treeLeaves(tr as Tree)) l.dispose();
};

function expectClose(got: number[], want: number[], tol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(
      tol * (1 + Math.abs(want[i])),
    );
  }
}

describe("valueAndGrad on cuda:0 (fake device: plait's wiring)", () => {
  it("the MNIST MLP's loss and gradients match the CPU f32 run bit for bit and the float64 reference", () => {
    const cpu = mlpParams("f32");
    const dev = toDev(cpu);
    const x = t([5, 8], 5);
    const y = tensor([0, 3, 1, 2, 3], [5], { dtype: "i32" });
    const batchDev = { x: x.to("cuda:0"), y: y.to("cuda:0") };
    const blocksBefore = fake.blocks.size;
    const step = valueAndGrad(mlpLoss);
    const onDev = step(dev as unknown as Tree, batchDev as never);
    // only the four gradients stay on the device
    expect(fake.blocks.size).toBe(blocksBefore + 4);
    const onCpu = step(cpu, { x, y });
    const f64 = mlpParams("f64");
    const ref = step(f64, { x: cast(x, "f64"), y });
    expect(Math.abs(onDev.loss - onCpu.loss)).toBeLessThan(1e-6);
    expect(Math.abs(onDev.loss - ref.loss)).toBeLessThan(1e-5);
    for (const k of ["w1", "b1", "w2", "b2"] as const) {
      const g = (onDev.grads as unknown as Record<string, CudaTensor>)[k];
      expect(g).toBeInstanceOf(CudaTensor);
      expect(g.device).toBe("cuda:0");
      expect(g.dtype).toBe("f32");
      expect(g.shape).toEqual(cpu[k].shape);
      const want = (onCpu.grads as Record<string, Tensor>)[k].toArray();
      expectClose(g.toArray(), want, 1e-6, `${k} vs cpu f32`);
      expectClose(g.toArray(), (ref.grads as Record<string, Tensor>)[k].toArray(), 1e-5, `${k} vs f64`);
    }
    expect(onDev.gradScale).toBe(1);
    free(onDev.grads, onCpu.grads, ref.grads, cpu, dev, f64, batchDev, { x, y });
  });

  it("NT and TN products, add, mul, scale, sum and mean: gradients match the CPU, a reused param accumulates", () => {
    const cpu = { a: t([3, 4], 11), w: t([5, 4], 12), v: t([3, 5], 13), u: t([3, 6], 14) };
    const dev = toDev(cpu);
    const c = t([3, 5], 15);
    const cDev = c.to("cuda:0");
    const loss = (p: Tree, k: Tensor) => {
      const q = p as typeof cpu;
      const nt = matmul(q.a, q.w, { transB: true }); // [3, 5]
      const tn = matmul(q.v, q.u, { transA: true }); // [5, 6]
      const again = matmul(q.a, q.w, { transB: true }); // w and a used twice
      const s = mul(add(nt, scale(again, 0.5)), k);
      return add(scale(sum(relu(s)), 0.25), mean(tn));
    };
    const step = valueAndGrad(loss);
    const onDev = step(dev as unknown as Tree, cDev as never, { lossScale: 8 });
    const onCpu = step(cpu, c, { lossScale: 8 });
    expect(onDev.gradScale).toBe(8);
    expect(Math.abs(onDev.loss - onCpu.loss)).toBeLessThan(1e-5);
    for (const k of ["a", "w", "v", "u"] as const) {
      const want = (onCpu.grads as Record<string, Tensor>)[k].toArray();
      expectClose((onDev.grads as unknown as Record<string, CudaTensor>)[k].toArray(), want, 1e-5, k);
      expect(
        want.some((w) => w !== 0),
        k,
      ).toBe(true);
    }
    free(onDev.grads, onCpu.grads, cpu, dev, { c, cDev });
  });

  it("a transposed-stored left operand (TN with a param) and a leaf the loss ignores (zero gradient)", () => {
    const cpu = { a: t([4, 3], 21), b: t([4, 2], 22), unused: t([2], 23) };
    const dev = toDev(cpu);
    const loss = (p: Tree) => sum(matmul((p as typeof cpu).a, (p as typeof cpu).b, { transA: true }));
    const gDev = valueAndGrad(loss)(dev as unknown as Tree, undefined).grads as unknown as Record<string, CudaTensor>;
    const gCpu = valueAndGrad(loss)(cpu, undefined).grads as Record<string, Tensor>;
    for (const k of ["a", "b", "unused"] as const) expectClose(gDev[k].toArray(), gCpu[k].toArray(), 1e-6, k);
    expect(gDev.unused.toArray()).toEqual([0, 0]);
    free(gDev, gCpu, cpu, dev);
  });

  it("a half weight (a 16-mixed compute copy): the product runs in f16, the gradient is f32, as on the CPU", () => {
    const w = cast(t([8, 4], 31), "f16");
    const x = t([3, 8], 32);
    const loss = (p: Tree, b: Tensor) => sum(relu(matmul(b, (p as { w: Tensor }).w)));
    const wDev = w.to("cuda:0");
    const xDev = x.to("cuda:0");
    fake.kernelCalls.length = 0;
    const gDev = valueAndGrad(loss)({ w: wDev } as unknown as Tree, xDev as never, { computeDType: "f16" });
    expect(fake.kernelCalls).toContain("cast f32→f16");
    const gCpu = valueAndGrad(loss)({ w }, x, { computeDType: "f16" });
    const gd = (gDev.grads as unknown as Record<string, CudaTensor>).w;
    expect(gd.dtype).toBe("f32");
    expectClose(gd.toArray(), (gCpu.grads as Record<string, Tensor>).w.toArray(), 1e-6, "w");
    free(gDev.grads, gCpu.grads, { w, x, wDev, xDev });
  });

  it("params on two devices, or on cpu and cuda: an error naming both", () => {
    const a = t([2, 2], 41);
    const p0 = a.to("cuda:0");
    const p1 = a.to("cuda:1");
    const loss = (p: Tree) => sum((p as unknown as CudaTensor[])[0]);
    expect(() => valueAndGrad(loss)([p0, p1] as unknown as Tree, undefined)).toThrow(
      /params leaf 1 is on cuda:1, but params leaf 0 is on cuda:0/,
    );
    expect(() => valueAndGrad(loss)([p0, a] as unknown as Tree, undefined)).toThrow(
      /params leaf 1 is on cpu, but params leaf 0 is on cuda:0/,
    );
    // a batch on another device than the params: the op names both
    const x1 = a.to("cuda:1");
    expect(() => valueAndGrad((p: Tree, b: Tensor) => sum(matmul(b, p as Tensor)))(p0 as never, x1 as never)).toThrow(
      /matmul: argument b is on cuda:0, but argument a is on cuda:1/,
    );
    free([a, p0, p1, x1]);
  });

  it("an op with no device backward throws naming the op and the device; nothing leaks", () => {
    const p = t([2, 3], 51).to("cuda:0");
    const before = fake.blocks.size;
    expect(() => valueAndGrad((q: Tree) => sum(tanh(q as never) as never))(p as never, undefined)).toThrow(
      /tanh: argument x \(f32\[2, 3\] on cuda:0\) is on cuda:0, but tanh runs on cpu/,
    );
    expect(() => valueAndGrad((q: Tree) => sum(cast(q as never, "f16") as never))(p as never, undefined)).toThrow(
      /cast on cuda:0 has no backward/,
    );
    expect(() => valueAndGrad((q: Tree) => sum(q as never, 0))(p as never, undefined)).toThrow(
      /sum on cuda:0: reductions along axes run on cpu only/,
    );
    // the raw kernels under plait's `cuda` refuse a recorded tensor, as core.* does on the CPU
    expect(() => valueAndGrad((q: Tree) => sum(cuda.reluOn(q as never)))(p as never, undefined)).toThrow(
      /cuda\.reluOn: argument 0 \(f32\[2, 3\] on cuda:0\) is recorded by valueAndGrad's tape on cuda:0, but cuda\.reluOn has no backward there/,
    );
    expect(() =>
      valueAndGrad((q: Tree) => sum(cuda.cudaMatmul(q as never, q as never, { transB: true })))(p as never, undefined),
    ).toThrow(/cuda\.cudaMatmul: argument 0 .* has no backward there/);
    expect(() => valueAndGrad(() => tensor([1]))(p as never, undefined)).toThrow(
      /with params on cuda:0, lossFn must return a scalar f32 tensor on cuda:0, got f32\[1\] \(a cpu tensor/,
    );
    expect(fake.blocks.size).toBe(before);
    p.dispose();
  });

  it("broadcasting and dtype limits of the device ops are named", () => {
    const a = t([2, 3], 61).to("cuda:0");
    const r = t([3], 62).to("cuda:0");
    expect(() => add(a, r)).toThrow(/add on cuda:0: arguments a \[2, 3\] and b \[3\] must have one shape/);
    const d = t([2, 3], 63, "f64").to("cuda:0");
    expect(() => relu(d)).toThrow(/relu on cuda:0: argument x has dtype f64, expected f32/);
    const y = tensor([0, 5], [2], { dtype: "i32" }).to("cuda:0");
    const loss = softmaxCrossEntropy(a, y); // label 5 ≥ 3 classes: NaN (the kernel reads nothing out of bounds)
    expect(Number.isNaN(loss.toArray()[0])).toBe(true);
    free([a, r, d, y, loss]);
  });
});
