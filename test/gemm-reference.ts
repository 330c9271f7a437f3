// The float64 reference for the GEMM tests (test/gemm.test.ts, test/gemm-kernels.test.ts), and the
// seeded test values other suites use too (rng, random); the reference is a
// triple loop in float64 and the per-element error bound of test/gemm.test.ts's header,
// |C − ref| ≤ 2·(k + 4)·u·Σ_p |a_ip·b_pj| (+ |bias_j| + |C0_ij|) + k·tiny.
import { expect } from "vitest";
import type { GemmOptions } from "../src/core/gemm.ts";
import { type DType, type Tensor, tensor } from "../src/index.ts";

export type InDType = "f32" | "f64" | "bf16" | "f16";
export const OUT: Record<InDType, DType> = { f32: "f32", f64: "f64", bf16: "f32", f16: "f32" };
const UNIT = { f32: 2 ** -24, f64: 2 ** -53 } as Record<DType, number>;
const TINY = { f32: 2 ** -149, f64: 2 ** -1074 } as Record<DType, number>;
export const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A tensor of `shape` with values in [-amp, amp) (rounded to dtype). */
export function random(shape: number[], dtype: InDType | DType, seed: number, amp = 1): Tensor {
  const r = rng(seed);
  const n = shape.reduce((x, y) => x * y, 1);
  const values = Array.from({ length: n }, () => (r() * 2 - 1) * amp);
  return tensor(dtype === "f64" ? Float64Array.from(values) : values, shape, { dtype });
}

/** Float64 reference of op(a)·op(b) + bias + c0, with Σ|terms| per element for the bound. */
export function reference(a: Tensor, b: Tensor, opts: GemmOptions, c0?: number[]) {
  const { transA = false, transB = false, bias } = opts;
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const n = transB ? b.shape[0] : b.shape[1];
  const av = a.toArray();
  const bv = b.toArray();
  const biasv = bias?.toArray();
  const ref = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const x = av[transA ? p * m + i : i * k + p] * bv[transB ? j * k + p : p * n + j];
        s += x;
        t += Math.abs(x);
      }
      if (biasv) {
        s += biasv[j];
        t += Math.abs(biasv[j]);
      }
      if (c0) {
        s += c0[i * n + j];
        t += Math.abs(c0[i * n + j]);
      }
      ref[i * n + j] = s;
      mag[i * n + j] = t;
    }
  }
  return { ref, mag, k };
}

/** Checks got against the reference within the bound; non-finite results must match exactly. */
export function expectClose(what: string, got: Tensor, { ref, mag, k }: ReturnType<typeof reference>) {
  const u = UNIT[got.dtype];
  const tiny = TINY[got.dtype];
  const g = got.toArray();
  expect(g.length, `${what}: size`).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const ok = Number.isFinite(ref[i])
      ? Math.abs(g[i] - ref[i]) <= 2 * (k + 4) * u * mag[i] + k * tiny
      : Object.is(g[i], ref[i]) || (Number.isNaN(ref[i]) && Number.isNaN(g[i]));
    if (!ok) {
      throw new Error(`${what}: element ${i} is ${g[i]}, reference ${ref[i]} (Σ|terms| ${mag[i]}, k ${k})`);
    }
  }
}
