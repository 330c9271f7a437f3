// The CUDA paths on a real device: copies, cuBLAS matmul (f32, f16, bf16; NN/NT/TN/TT, bias,
// accumulate) and every PTX kernel, each against a float64 or bit-exact reference computed here.
// Runs where cudaGetDeviceCount finds a device (test/gpu/run.sh on the GPU machines); elsewhere
// every test is skipped with the reason in its name.
import { describe, expect, it } from "vitest";
import { CudaError } from "../ffi/cuda/errors.ts";
import * as cuda from "../ffi/cuda/index.ts";
import { CudaTensor, matmul, Tensor, tensor } from "../src/index.ts";

const why = (() => {
  try {
    return cuda.deviceCount() > 0 ? "" : " (skipped: no CUDA device)";
  } catch (e) {
    return ` (skipped: ${e instanceof CudaError ? `${e.call} returned ${e.code} ${e.errorName}` : String(e).split("\n")[0]})`;
  }
})();
const gpu = why === "";

/** Deterministic values in [-1, 1) that f32 holds exactly. */
const values = (n: number, seed = 1) =>
  Float32Array.from({ length: n }, (_, i) => (((i * 2654435761 + seed * 40503) >>> 0) % 4096) / 2048 - 1);

const f64Gemm = (a: number[], b: number[], m: number, n: number, k: number, tA: boolean, tB: boolean) => {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = s;
    }
  return out;
};

const close = (got: number[], want: ArrayLike<number>, tol: number) => {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  expect(worst).toBeLessThan(tol);
};

describe.skipIf(!gpu)(`on cuda:0${why}`, () => {
  it("device info and name", () => {
    const info = cuda.deviceInfo(0);
    expect(info.multiProcessors).toBeGreaterThan(0);
    expect(info.computeCapability).toMatch(/^\d+\.\d+$/);
    expect(info.totalBytes).toBeGreaterThan(info.freeBytes / 2);
    expect(cuda.deviceName(0)).toMatch(/\S/);
  });

  it("copies every dtype there and back, and device to device", () => {
    for (const dtype of ["f32", "f64", "f16", "bf16", "i32", "u8"] as const) {
      const host = tensor([1, 2, 3, 4, 5, 250], [2, 3], { dtype });
      const g = host.to("cuda:0");
      expect(g).toBeInstanceOf(CudaTensor);
      const g2 = g.to("cuda:0");
      const back = g2.to("cpu");
      expect(back).toBeInstanceOf(Tensor);
      expect(back.toArray()).toEqual(host.toArray());
      for (const t of [host, g, g2, back]) t.dispose();
    }
  });

  it("matmul f32 on cuBLAS: NN/NT/TN/TT × bias × accumulate, against a float64 GEMM", () => {
    const [m, n, k] = [37, 29, 53];
    for (const tA of [false, true])
      for (const tB of [false, true]) {
        const a = values(m * k, 1);
        const b = values(k * n, 2);
        const bias = values(n, 3);
        const c0 = values(m * n, 4);
        const ga = tensor(a, tA ? [k, m] : [m, k], { device: "cuda:0" });
        const gb = tensor(b, tB ? [n, k] : [k, n], { device: "cuda:0" });
        const gbias = tensor(bias, [n], { device: "cuda:0" });
        const ref = f64Gemm([...a], [...b], m, n, k, tA, tB);
        const c = matmul(ga, gb, { transA: tA, transB: tB, bias: gbias });
        close(
          c.toArray(),
          ref.map((v, i) => v + bias[i % n]),
          1e-5,
        );
        const out = tensor(c0, [m, n], { device: "cuda:0" });
        cuda.cudaMatmul(ga, gb, { transA: tA, transB: tB, out, accumulate: true });
        close(
          out.toArray(),
          ref.map((v, i) => v + c0[i]),
          1e-5,
        );
        for (const t of [ga, gb, gbias, c, out]) t.dispose();
      }
  });

  it("matmul f16 and bf16 on cublasGemmEx (f32 accumulation) against a float64 GEMM of the rounded inputs", () => {
    const [m, n, k] = [64, 48, 96];
    for (const dtype of ["f16", "bf16"] as const) {
      const ha = tensor(values(m * k, 5), [m, k], { dtype });
      const hb = tensor(values(n * k, 6), [n, k], { dtype });
      const ref = f64Gemm(ha.toArray(), hb.toArray(), m, n, k, false, true);
      const c = matmul(ha.to("cuda:0"), hb.to("cuda:0"), { transB: true });
      expect(c.dtype).toBe("f32");
      close(c.toArray(), ref, 2e-4);
      for (const t of [ha, hb, c]) t.dispose();
    }
  });

  it("casts f32 → f16/bf16 bit for bit as the CPU's round-to-nearest-even, and back exactly", () => {
    const x = Float32Array.from([...values(4099, 7)].map((v, i) => v * 2 ** ((i % 60) - 30)));
    x.set([0, -0, 65504, 65520, 1e-8, Number.POSITIVE_INFINITY, Number.NaN], 0);
    const gx = tensor(x, [x.length], { device: "cuda:0" });
    for (const dtype of ["f16", "bf16"] as const) {
      const want = tensor(x, [x.length], { dtype });
      const h = cuda.castOn(gx, dtype);
      const got = h.to("cpu");
      expect([...(got.data() as Uint16Array)]).toEqual([...(want.data() as Uint16Array)]);
      const back = cuda.castOn(h, "f32");
      expect(back.toArray()).toEqual(want.toArray());
      for (const t of [want, h, got, back]) t.dispose();
    }
    gx.dispose();
  });

  it("unscale: multiplies by inv and raises the flag only for a non-finite value", () => {
    const g = tensor(values(1000, 8), [1000], { device: "cuda:0" });
    const dst = new CudaTensor([1000], "f32", 0);
    const f = cuda.finiteFlag(0);
    cuda.unscaleOn(g, dst, 0.25, f.flag);
    expect(f.allFinite()).toBe(true);
    close(
      dst.toArray(),
      [...values(1000, 8)].map((v) => v * 0.25),
      1e-7,
    );
    const bad = tensor([1, Number.POSITIVE_INFINITY, 3], [3], { dtype: "f16", device: "cuda:0" });
    const dst3 = new CudaTensor([3], "f32", 0);
    cuda.unscaleOn(bad, dst3, 0.5, f.flag);
    expect(f.allFinite()).toBe(false);
    for (const t of [g, dst, f.flag, bad, dst3]) t.dispose();
  });

  it("SGD with momentum (first and later steps, nesterov, weight decay) and AdamW match a float64 reference", () => {
    const n = 777;
    const p0 = values(n, 9);
    const g0 = values(n, 10);
    const p = tensor(p0, [n], { device: "cuda:0" });
    const g = tensor(g0, [n], { device: "cuda:0" });
    const buf = new CudaTensor([n], "f32", 0);
    const o = { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true };
    cuda.sgdOn(p, g, buf, { ...o, started: false });
    cuda.sgdOn(p, g, buf, { ...o, started: true });
    const want = [...p0].map((pi, i) => {
      let q = pi;
      let b = 0;
      for (let s = 0; s < 2; s++) {
        const d = g0[i] + 0.01 * q;
        b = s === 0 ? d : 0.9 * b + d;
        q -= 0.1 * (d + 0.9 * b);
      }
      return q;
    });
    close(p.toArray(), want, 1e-6);
    const m = tensor(new Float32Array(n), [n], { device: "cuda:0" });
    const v = tensor(new Float32Array(n), [n], { device: "cuda:0" });
    const pa = tensor(p0, [n], { device: "cuda:0" });
    cuda.adamOn(pa, g, m, v, { lr: 1e-3, decoupled: true, weightDecay: 0.01, step: 1 });
    const wantA = [...p0].map((pi, i) => {
      const q = pi * (1 - 1e-3 * 0.01);
      const mm = 0.1 * g0[i];
      const vv = 0.001 * g0[i] * g0[i];
      return q - (1e-3 / 0.1) * (mm / (Math.sqrt(vv) / Math.sqrt(0.001) + 1e-8));
    });
    close(pa.toArray(), wantA, 1e-5);
    for (const t of [p, g, buf, m, v, pa]) t.dispose();
  });

  it("elementwise add, mul, relu and relu's backward", () => {
    const a0 = values(513, 11);
    const b0 = values(513, 12);
    const a = tensor(a0, [513], { device: "cuda:0" });
    const b = tensor(b0, [513], { device: "cuda:0" });
    const outs = [cuda.addOn(a, b), cuda.mulOn(a, b), cuda.reluOn(a), cuda.reluBackwardOn(a, b)];
    const wants = [
      [...a0].map((x, i) => Math.fround(x + b0[i])),
      [...a0].map((x, i) => Math.fround(x * b0[i])),
      [...a0].map((x) => Math.max(x, 0)),
      [...a0].map((x, i) => (x > 0 ? b0[i] : 0)),
    ];
    for (const [i, o] of outs.entries()) expect(o.toArray()).toEqual(wants[i]);
    for (const t of [a, b, ...outs]) t.dispose();
  });

  it("sum and sum of squares: close to float64 and the same bits on every run", () => {
    for (const n of [1, 255, 256, 1000, 300_001]) {
      const x = values(n, 14);
      const g = tensor(x, [n], { device: "cuda:0" });
      const s = [...x].reduce((a, v) => a + v, 0);
      const q = [...x].reduce((a, v) => a + v * v, 0);
      expect(Math.abs(cuda.sumOn(g) - s)).toBeLessThan(1e-4 * (1 + Math.abs(s)) + 1e-3);
      const sq = cuda.sumOn(g, { square: true });
      expect(Math.abs(sq - q) / q).toBeLessThan(1e-5);
      expect(cuda.sumOn(g, { square: true })).toBe(sq);
      g.dispose();
    }
  });

  it("softmax cross-entropy: per-row losses and the mean's gradient against float64", () => {
    const [rows, cols] = [33, 10];
    const x = values(rows * cols, 13).map((v) => v * 8);
    const labels = Int32Array.from({ length: rows }, (_, r) => (r * 7) % cols);
    const gx = tensor(x, [rows, cols], { device: "cuda:0" });
    const gl = tensor(labels, [rows], { device: "cuda:0" });
    const { loss, dlogits } = cuda.softmaxXentOn(gx, gl);
    const wantLoss: number[] = [];
    const wantGrad: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = [...x.subarray(r * cols, (r + 1) * cols)];
      const mx = Math.max(...row);
      const s = row.reduce((acc, v) => acc + Math.exp(v - mx), 0);
      wantLoss.push(Math.log(s) + mx - row[labels[r]]);
      for (const [c, v] of row.entries()) wantGrad.push((Math.exp(v - mx) / s - (c === labels[r] ? 1 : 0)) / rows);
    }
    close(loss.toArray(), wantLoss, 1e-5);
    close(dlogits.toArray(), wantGrad, 1e-6);
    for (const t of [gx, gl, loss, dlogits]) t.dispose();
  });
});

it(`the device suite's status here${why}`, () => {
  expect(typeof why).toBe("string");
});
