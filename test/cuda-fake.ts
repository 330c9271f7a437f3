// A CUDA device without a GPU, for the no-GPU tests of plait's device wiring: a CudaBackend
// whose "device memory" is host memory (addresses are keys into a map of byte arrays), and a
// table of the device kernels (ffi/cuda/dispatch.ts's DeviceKernels) written in plain JS over
// that memory. What these tests check is plait's wiring (dispatch to the device ops, the device
// tape, the optimizer and precision plumbing, the gradients landing on the right tensors); the
// real PTX kernels and cuBLAS run in test/cuda-gpu.test.ts and test/gpu/run.sh on a GPU.
// The matmul and casts reuse plait's CPU kernels (core.matmul's WASM GEMM, the CPU casts), so
// a device result can be compared with the CPU one; the rest are direct transcriptions of the
// .cu files' formulas.
import { afterAll, beforeAll } from "vitest";
import { cudaBackend } from "../ffi/cuda/backend.ts";
import { type DeviceKernels, setDeviceKernels } from "../ffi/cuda/dispatch.ts";
import type { AdamOnOptions, SgdOnOptions } from "../ffi/cuda/ops.ts";
import { cast as cpuCast } from "../src/core/cast.ts";
import { type CudaBackend, CudaTensor, registerCudaBackend } from "../src/core/device.ts";
import { matmul as cpuMatmul } from "../src/core/gemm.ts";
import type { Tensor } from "../src/core/tensor.ts";

/** A subnormal f32 becomes a zero of its sign (the optimizer kernels' rule for stored state). */
const flush = (x: number) => (Math.abs(x) < 2 ** -126 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : x);

/**
 * The fake device for the tests of one file or describe block: its backend (and, unless
 * `backendOnly`, its kernel table) installed before them, the real ones back after them.
 */
export function useFakeDevice(opts: { backendOnly?: boolean } = {}) {
  const fake = fakeDevice();
  beforeAll(() => {
    registerCudaBackend(fake.backend);
    if (!opts.backendOnly) setDeviceKernels(fake.kernels);
  });
  afterAll(() => {
    if (!opts.backendOnly) setDeviceKernels(undefined);
    registerCudaBackend(cudaBackend);
  });
  return fake;
}

export function fakeDevice() {
  const blocks = new Map<bigint, Uint8Array>();
  let next = 0x1000n;
  const at = (ptr: bigint): [Uint8Array, number] => {
    const exact = blocks.get(ptr);
    if (exact) return [exact, 0];
    for (const [base, bytes] of blocks)
      if (ptr >= base && ptr < base + BigInt(bytes.length)) return [bytes, Number(ptr - base)];
    throw new Error(`fake device: no block at ${ptr}`);
  };
  const calls: string[] = [];
  const backend: CudaBackend = {
    alloc(index, bytes) {
      calls.push(`alloc ${index} ${bytes}`);
      const ptr = next;
      next += BigInt(bytes + 256);
      blocks.set(ptr, new Uint8Array(bytes));
      return ptr;
    },
    free(index, ptr) {
      calls.push(`free ${index}`);
      if (!blocks.delete(ptr)) throw new Error("fake device: double free");
    },
    upload(_i, dst, src) {
      const [b, o] = at(dst);
      b.set(src, o);
    },
    download(_i, dst, src) {
      const [b, o] = at(src);
      dst.set(b.subarray(o, o + dst.length));
    },
    copy(_i, dst, src, bytes) {
      const [d, od] = at(dst);
      const [s, os] = at(src);
      d.set(s.subarray(os, os + bytes), od);
    },
  };
  /** A typed view of a device tensor's bytes (f32 or i32). */
  const f32 = (t: CudaTensor): Float32Array => {
    const [b, o] = at(t.ptr);
    return new Float32Array(b.buffer, b.byteOffset + o, t.size);
  };
  const i32 = (t: CudaTensor): Int32Array => {
    const [b, o] = at(t.ptr);
    return new Int32Array(b.buffer, b.byteOffset + o, t.size);
  };
  /** Overwrites device tensor `dst` with the bytes of cpu tensor `src` (then disposes src). */
  const store = (dst: CudaTensor, src: Tensor) => {
    const [b, o] = at(dst.ptr);
    b.set(new Uint8Array(src.data().buffer, src.ptr, src.byteLength), o);
    src.dispose();
  };
  const kernelCalls: string[] = [];
  const log = (name: string) => kernelCalls.push(name);
  const map = (out: Float32Array, fn: (i: number) => number) => {
    for (let i = 0; i < out.length; i++) out[i] = fn(i);
  };
  const fresh = (like: CudaTensor) => new CudaTensor(like.shape, "f32", like.deviceIndex);

  const kernels: DeviceKernels = {
    matmul(a, b, opts = {}) {
      log("matmul");
      const { transA, transB, bias, out, accumulate } = opts;
      const [A, B, C] = [a.to("cpu"), b.to("cpu"), bias?.to("cpu")];
      const O = out && accumulate ? out.to("cpu") : undefined;
      try {
        const r = cpuMatmul(A, B, { transA, transB, bias: C, out: O, accumulate });
        const dst = out ?? new CudaTensor(r.shape, "f32", a.deviceIndex);
        store(dst, r);
        return dst;
      } finally {
        for (const t of [A, B, C]) t?.dispose();
      }
    },
    cast(x, dtype) {
      log(`cast ${x.dtype}→${dtype}`);
      const h = x.to("cpu");
      const c = cpuCast(h, dtype);
      h.dispose();
      const out = new CudaTensor(x.shape, dtype, x.deviceIndex);
      store(out, c);
      return out;
    },
    unscale(src, dst, inv, foundInf) {
      log("unscale");
      const h = src.to("cpu");
      const s = h.dtype === "f32" ? h : cpuCast(h, "f32");
      const v = s.data() as Float32Array;
      const d = f32(dst);
      const flag = i32(foundInf);
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i])) flag[0] = 1;
        d[i] = v[i] * inv;
      }
      if (s !== h) s.dispose();
      h.dispose();
    },
    finiteFlag(device) {
      log("finiteFlag");
      const flag = new CudaTensor([1], "i32", device);
      i32(flag)[0] = 0;
      return { flag, allFinite: () => i32(flag)[0] === 0 };
    },
    sgd(p, g, buf, o: SgdOnOptions) {
      log("sgd");
      const [P, G] = [f32(p), f32(g)];
      const B = buf ? f32(buf) : undefined;
      const m = o.momentum ?? 0;
      const mode = m === 0 ? 0 : o.started ? 2 : 1;
      const wd = o.weightDecay ?? 0;
      const gs = Math.fround(1 - (o.dampening ?? 0));
      for (let i = 0; i < P.length; i++) {
        let d = G[i];
        if (wd !== 0) d = Math.fround(Math.fround(wd) * P[i] + d);
        if (mode !== 0 && B) {
          const bb = flush(mode === 1 ? d : Math.fround(gs * d + Math.fround(B[i] * Math.fround(m))));
          B[i] = bb;
          d = o.nesterov ? Math.fround(Math.fround(m) * bb + d) : bb;
        }
        P[i] = Math.fround(-Math.fround(o.lr) * d + P[i]);
      }
    },
    adam(p, g, m, v, o: AdamOnOptions) {
      const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, step } = o;
      const wd = o.weightDecay ?? (o.decoupled ? 0.01 : 0);
      const l2 = o.decoupled ? 0 : wd;
      const decay = o.decoupled && wd !== 0 ? 1 - lr * wd : 1;
      const scalars = [
        lr / (1 - beta1 ** step),
        Math.sqrt(1 - beta2 ** step),
        eps,
        1 - beta1,
        beta2,
        1 - beta2,
        l2,
        decay,
      ];
      kernels.adamStep(p, g, m, v, scalars as never);
    },
    adamStep(p, g, m, v, scalars) {
      log("adam");
      const f = Math.fround;
      const [stepSize, bc2, eps, w, b2, c2, l2, decay] = scalars.map(f);
      const [P, G, M, V] = [f32(p), f32(g), f32(m), f32(v)];
      for (let i = 0; i < P.length; i++) {
        let pi = P[i];
        let gi = G[i];
        if (l2 !== 0) gi = f(l2 * pi + gi);
        if (decay !== 1) pi = f(pi * decay);
        const diff = f(gi - M[i]);
        const mi = flush(w < 0.5 ? f(w * diff + M[i]) : f(-f(1 - w) * diff + gi));
        const vi = flush(f(b2 * V[i] + f(f(c2 * gi) * gi)));
        M[i] = mi;
        V[i] = vi;
        P[i] = f(pi - f(stepSize * f(mi / f(f(f(Math.sqrt(vi)) / bc2) + eps))));
      }
    },
    add(a, b) {
      log("add");
      const out = fresh(a);
      const [A, B] = [f32(a), f32(b)];
      map(f32(out), (i) => A[i] + B[i]);
      return out;
    },
    mul(a, b) {
      log("mul");
      const out = fresh(a);
      const [A, B] = [f32(a), f32(b)];
      map(f32(out), (i) => A[i] * B[i]);
      return out;
    },
    relu(x) {
      log("relu");
      const out = fresh(x);
      const X = f32(x);
      // biome-ignore lint/complexity/useMathMinMax: NaN and -0 must pass through as in relu_f32 (Math.max differs on both)
      map(f32(out), (i) => (X[i] < 0 ? 0 : X[i])); // NaN and -0 kept, as relu_f32 in elementwise.cu
      return out;
    },
    reluBackward(x, g) {
      log("reluBackward");
      const out = fresh(x);
      const [X, G] = [f32(x), f32(g)];
      map(f32(out), (i) => (X[i] > 0 ? G[i] : 0));
      return out;
    },
    softmaxXent(logits, labels, gradScale = 1 / logits.shape[0]) {
      log("softmaxXent");
      const [rows, cols] = logits.shape;
      const loss = new CudaTensor([rows], "f32", logits.deviceIndex);
      const dlogits = fresh(logits);
      const [X, Y, L, D] = [f32(logits), i32(labels), f32(loss), f32(dlogits)];
      for (let r = 0; r < rows; r++) {
        let m = Number.NEGATIVE_INFINITY;
        for (let c = 0; c < cols; c++) m = Math.max(m, X[r * cols + c]);
        let s = 0;
        for (let c = 0; c < cols; c++) s += Math.exp(X[r * cols + c] - m);
        const y = Y[r];
        const valid = y >= 0 && y < cols;
        L[r] = valid ? Math.log(s) + m - X[r * cols + y] : Number.NaN;
        for (let c = 0; c < cols; c++)
          D[r * cols + c] = (Math.exp(X[r * cols + c] - m) / s - (valid && c === y ? 1 : 0)) * gradScale;
      }
      return { loss, dlogits };
    },
    sum(x, opts = {}) {
      log("sum");
      let s = 0;
      for (const v of f32(x)) s += opts.square ? v * v : v;
      return Math.fround(s);
    },
    sumTo(x, out, factor = 1) {
      log("sumTo");
      let s = 0;
      for (const v of f32(x)) s += v;
      f32(out)[0] = Math.fround(Math.fround(s) * factor);
    },
    scale(x, s, out) {
      log("scale");
      const X = f32(x);
      map(f32(out), (i) => s * X[i]);
    },
    axpy(s, x, y) {
      log("axpy");
      const [X, Y] = [f32(x), f32(y)];
      map(Y, (i) => s * X[i] + Y[i]);
    },
    scaleBy(x, s, factor, out, accumulate) {
      log("scaleBy");
      const k = Math.fround(f32(s)[0] * factor);
      const X = x ? f32(x) : undefined;
      const O = f32(out);
      map(O, (i) => (accumulate ? O[i] : 0) + (X ? X[i] * k : k));
    },
    colSum(g, out, accumulate) {
      log("colSum");
      const cols = out.size;
      const G = f32(g);
      const O = f32(out);
      const rows = cols === 0 ? 0 : G.length / cols;
      for (let c = 0; c < cols; c++) {
        let acc = 0;
        for (let r = 0; r < rows; r++) acc = Math.fround(acc + G[r * cols + c]);
        O[c] = accumulate ? O[c] + acc : acc;
      }
    },
    zero(t) {
      log("zero");
      const [b, o] = at(t.ptr);
      b.fill(0, o, o + t.byteLength);
    },
  };
  return { backend, blocks, calls, kernels, kernelCalls };
}
