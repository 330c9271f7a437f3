// exp, log, tanh, sigmoid, gelu and gelu's backward form against float64 Math.*, with the error
// bounds that kernels/as/math.ts states (measured there over every f32 input), at every SIMD
// tail size and the threaded size, on random bit patterns (all exponents, NaN, inf,
// subnormals), an ordinary range, and each function's edge values.
import { describe, expect, it } from "vitest";
import { gelu, sigmoid, tanh } from "../src/core/activation.ts";
import { geluBackward } from "../src/core/activation-backward.ts";
import { exp, log } from "../src/core/unary.ts";
import { configure, type Tensor, tensor } from "../src/index.ts";
import { checkAll, EDGES, MIN_SUBNORMAL, rng, SIZES, U32, ulpF32 } from "./elementwise-ref.ts";

configure({ threads: 2 }); // the largest size then runs split over two threads

const f32 = Math.fround;

/** n inputs: a third random bit patterns, the rest uniform in [lo, hi], with `edges` sprinkled in. */
function inputs(n: number, seed: number, lo: number, hi: number, edges: readonly number[]): Float32Array {
  const r = rng(seed);
  const bits = new Uint32Array(1);
  const asF32 = new Float32Array(bits.buffer);
  return Float32Array.from({ length: n }, () => {
    const k = r();
    if (k < 0.05) return edges[Math.floor(r() * edges.length)];
    if (k < 0.35) {
      bits[0] = Math.floor(r() * 2 ** 32);
      return asF32[0];
    }
    return lo + (hi - lo) * r();
  });
}

/** Runs `op` on x at every size and checks it within `ulps(x)` f32 ulps of `ref`. */
function checkUlps(
  name: string,
  op: (t: Tensor) => Tensor,
  ref: (x: number) => number,
  ulps: (x: number) => number,
  lo: number,
  hi: number,
  edges: readonly number[],
) {
  for (const n of SIZES) {
    const x = inputs(n, n + name.length, lo, hi, [...EDGES, ...edges].map(f32));
    const t = tensor(x);
    const got = op(t).toFloat32Array();
    checkAll(
      `${name} n=${n}`,
      got,
      (i) => ref(x[i]),
      (i, r) => ulps(x[i]) * ulpF32(r),
      (i) => `x = ${x[i]}`,
    );
    t.dispose();
  }
}

const K2 = 2 * Math.sqrt(2 / Math.PI);
const C = 0.044715;
/** gelu's sigmoid argument: gelu(x) = x·σ(u). */
const geluU = (x: number) => K2 * (x + C * x * x * x);

describe("exp and log", () => {
  it("exp within 1 ulp; overflow to inf, underflow to 0 through the subnormals", () => {
    const edges = [88.72283, 88.72284, 89, -87.33654, -87.3366, -100, -103.27893, -103.97208, -104, -150, 1e-7, -1e-7];
    checkUlps("exp", exp, Math.exp, () => 1, -110, 95, edges);
  });

  it("log within 1 ulp; log(±0) = -inf, log(x < 0) = NaN, log(inf) = inf, subnormals", () => {
    const edges = [1, f32(1 + 2 ** -23), f32(1 - 2 ** -24), Math.SQRT2, Math.SQRT1_2, 2, 0.5, 1e-45, 1e-39, 3e38];
    checkUlps("log", log, Math.log, () => 1, 0, 100, edges);
  });

  it("exp and log keep NaN, and exp(-inf) = 0", () => {
    const x = tensor([Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, -0]);
    expect(exp(x).toArray()).toEqual([Number.NaN, 0, Number.POSITIVE_INFINITY, 1]);
    expect(log(x).toArray()).toEqual([Number.NaN, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });
});

describe("tanh, sigmoid, gelu", () => {
  it("tanh within 1.5 ulp, saturating to ±1", () => {
    const edges = [0.625, f32(0.625 - 2 ** -24), 9, 9.1, -9.1, 1e-20, -1e-30, 20, -20];
    checkUlps("tanh", tanh, Math.tanh, () => 1.5, -10, 10, edges);
  });

  it("sigmoid within 3 ulp, including the subnormal tail", () => {
    const edges = [88.7, -88.7, -87.3, -100, -103.9, -104, 17, -17, 1e-30];
    checkUlps(
      "sigmoid",
      sigmoid,
      (x) => 1 / (1 + Math.exp(-x)),
      () => 3,
      -30,
      30,
      edges,
    );
  });

  // The tanh form ½x(1 + tanh(u/2)) cancels in float64 too for x < -6, so the reference uses
  // its equal x·σ(u). The kernel's bound grows with |u|: the f32 rounding of u (~2 ulp) is
  // amplified by e^u where gelu → 0 (x ≪ 0).
  it("gelu within 3·(1 + |u|) ulp, u = 2√(2/π)(x + 0.044715x³); gelu(-inf) = -0", () => {
    const ref = (x: number) => (x === Number.NEGATIVE_INFINITY ? -0 : x / (1 + Math.exp(-geluU(x))));
    const edges = [-5, -9.98, -10.5, -20, 1e20, -1e20, 3];
    checkUlps("gelu", gelu, ref, (x) => 3 * (1 + Math.abs(geluU(x))), -12, 6, edges);
    // the tanh form itself, where float64 can evaluate it
    const x = inputs(1023, 7, -5, 5, [0, -0]);
    const tanhForm = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + C * v * v * v)));
    const got = gelu(tensor(x)).toFloat32Array();
    checkAll(
      "gelu (tanh form)",
      got,
      (i) => (Math.abs(x[i]) <= 5 ? tanhForm(x[i]) : got[i]),
      (i, r) => 3 * (1 + Math.abs(geluU(x[i]))) * ulpF32(r) + 1e-15,
    );
  });

  // Relative to the terms' size, plus 2⁻¹⁴⁹ for each intermediate (σ, e^{-|u|}) that leaves the
  // f32 range far out in the tail.
  it("geluBackward: dy·gelu'(x) within 4·(1 + |u|)·2⁻²⁴ of |dy|·(|σ| + |x·σ(1−σ)·u'|)", () => {
    for (const n of SIZES) {
      const x = inputs(n, n + 30, -12, 6, [...EDGES, -0.75, -5, -20, 1e20, -1e20].map(f32));
      const dy = Float32Array.from(inputs(n, n + 31, -4, 4, [1, -1, 0]), (v) => (Number.isFinite(v) ? v : 1));
      const got = geluBackward(tensor(x), tensor(dy)).toFloat32Array();
      // σ(u) and σ(1 − σ) = e/(1 + e)² with e = e^{-|u|}, free of cancellation
      const parts = (v: number) => {
        const u = geluU(v);
        const e = Math.exp(-Math.abs(u));
        const sig = u >= 0 ? 1 / (1 + e) : e / (1 + e);
        const du = K2 * (1 + 3 * C * v * v);
        const term = e === 0 ? 0 : (v * du * e) / ((1 + e) * (1 + e));
        return { u, sig, term, xdu: v * du };
      };
      checkAll(
        `geluBackward n=${n}`,
        got,
        (i) => {
          const { sig, term } = parts(x[i]);
          return Number.isNaN(x[i]) ? Number.NaN : dy[i] * (sig + term);
        },
        (i) => {
          if (!Number.isFinite(x[i])) return 0; // the limits 0 (x = -inf) and dy (x = inf), exactly
          const { u, sig, term, xdu } = parts(x[i]);
          const rel = 4 * (1 + Math.abs(u)) * U32 * (Math.abs(sig) + Math.abs(term));
          return Math.abs(dy[i]) * (rel + (1 + Math.abs(xdu)) * MIN_SUBNORMAL) + MIN_SUBNORMAL;
        },
        (i) => `x = ${x[i]}, dy = ${dy[i]}`,
      );
    }
  });
});
