// The f64 activations (kernels/as/activation_f64.ts, activation_backward_f64.ts) against float64
// Math.* references, at every SIMD tail size and the threaded size, on random f64 bit patterns
// (all exponents, NaN, inf, subnormals), ordinary ranges and edge values; and the ops' f64
// gradients against central differences of a float64 forward.
import { describe, expect, it } from "vitest";
import { Rng } from "../src/data/rng.ts";
import { configure, core, scope, type Tensor, tensor } from "../src/index.ts";
import { gelu, relu, sigmoid, tanh } from "../src/ops/activation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { checkAll, rng, SIZES, U64 } from "./elementwise-ref.ts";
import { gradCheck, randTensor } from "./ops-gradcheck.ts";

configure({ threads: 2 }); // the largest size then runs split over two threads

const MIN_SUB = 2 ** -1074;
const EDGES64 = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  MIN_SUB,
  -MIN_SUB,
  1e-310,
  -3e-320,
  2 ** -1022,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  1,
  -1,
  0.5,
  1e10,
  -1e10,
];

/** Spacing of f64 values at |r| (2^-1074 in the subnormal range). */
function ulpF64(r: number): number {
  const a = Math.abs(r);
  if (a < 2 ** -1022) return MIN_SUB;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return 2 ** (e - 52);
}

/** n inputs: a quarter random bit patterns, the rest uniform in [lo, hi], with edges sprinkled in. */
function inputs(n: number, seed: number, lo: number, hi: number, edges: readonly number[]): Float64Array {
  const r = rng(seed);
  const words = new Uint32Array(2);
  const asF64 = new Float64Array(words.buffer);
  return Float64Array.from({ length: n }, () => {
    const k = r();
    if (k < 0.05) return edges[Math.floor(r() * edges.length)];
    if (k < 0.3) {
      words[0] = Math.floor(r() * 2 ** 32);
      words[1] = Math.floor(r() * 2 ** 32);
      return asF64[0];
    }
    return lo + (hi - lo) * r();
  });
}

const f64 = (x: Float64Array) => tensor(x, [x.length], { dtype: "f64" });

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
    scope(() => {
      const x = inputs(n, n + name.length, lo, hi, [...EDGES64, ...edges]);
      const got = op(f64(x)).data() as Float64Array;
      expect(got).toBeInstanceOf(Float64Array);
      checkAll(
        `${name} n=${n}`,
        got,
        (i) => ref(x[i]),
        (i, r) => ulps(x[i]) * ulpF64(r),
        (i) => `x = ${x[i]}`,
      );
    });
  }
}

const K2 = 2 * Math.sqrt(2 / Math.PI);
const C = 0.044715;
const geluU = (x: number) => K2 * (x + C * x * x * x);
/** σ without cancellation or overflow, in float64 (≈1.5 ulp itself). */
const sigmoidRef = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

// The bounds are the kernels' measured-against-mpmath bounds (kernels/as/activation_math_f64.ts)
// plus the float64 references' own rounding (Math.tanh ≈ 1 ulp, the σ formula ≈ 1.5 ulp).
describe("f64 activations against float64 references", () => {
  it("relu is exact: max(x, 0), NaN kept, -0 kept", () => {
    checkUlps(
      "relu",
      core.relu,
      (x) => Math.max(x, 0),
      () => 0,
      -10,
      10,
      [],
    );
    scope(() => {
      const got = core.relu(f64(Float64Array.of(-0, -MIN_SUB))).data();
      expect(Object.is(got[0], -0)).toBe(true);
      expect(Object.is(got[1], 0)).toBe(true);
    });
  });

  it("tanh within 4 ulp, odd, exactly ±1 from |x| = 20, tiny x kept", () => {
    const edges = [19.999, 20, 20.001, -20, 0.17, 0.35, -0.2395339012145996, 1e-300, -1e-300, 40, 800];
    checkUlps("tanh", core.tanh, Math.tanh, () => 4, -25, 25, edges);
  });

  it("sigmoid within 4.5 ulp, through the subnormal tail to 0", () => {
    const edges = [-37, -708, -744, -745.1, -746, 709, 710, 36, -1.978355884552002];
    checkUlps("sigmoid", core.sigmoid, sigmoidRef, () => 4.5, -40, 40, edges);
    checkUlps("sigmoid (tail)", core.sigmoid, sigmoidRef, () => 4.5, -760, -30, edges);
  });

  // The rounding of u is amplified by e^u where gelu → 0 (x ≪ 0), in the kernel (measured
  // 1.75·(1 + |u|) ulp) and in the reference alike.
  it("gelu within 5·(1 + |u|) ulp; gelu(-inf) = -0, gelu(inf) = inf", () => {
    const ref = (x: number) => (x === Number.NEGATIVE_INFINITY ? -0 : x * sigmoidRef(geluU(x)));
    const edges = [-5, -10, -26, -27, 1e100, -1e100, 3];
    checkUlps("gelu", core.gelu, ref, (x) => 5 * (1 + Math.abs(geluU(x))), -30, 8, edges);
    scope(() => {
      const got = core.gelu(f64(Float64Array.of(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY))).data();
      expect(Object.is(got[0], -0)).toBe(true);
      expect(got[1]).toBe(Number.POSITIVE_INFINITY);
    });
  });
});

describe("f64 activation backward forms against float64 references", () => {
  const dyOf = (n: number, seed: number) =>
    Float64Array.from(inputs(n, seed, -4, 4, [1, -1, 0]), (v) => (Number.isFinite(v) ? v : 1));

  it("reluBackward: dy where x > 0, else 0 (NaN x gives 0)", () => {
    for (const n of SIZES) {
      scope(() => {
        const x = inputs(n, n + 1, -3, 3, EDGES64);
        const dy = dyOf(n, n + 2);
        const got = core.reluBackward(f64(x), f64(dy)).data() as Float64Array;
        checkAll(
          `reluBackward n=${n}`,
          got,
          (i) => (x[i] > 0 ? dy[i] : 0),
          () => 0,
        );
      });
    }
  });

  it("tanhBackward and sigmoidBackward: dy·(1 − y)(1 + y) and dy·y(1 − y) within 2 ulp", () => {
    for (const n of SIZES) {
      scope(() => {
        const y = inputs(n, n + 3, -1, 1, [1, -1, 0, -0, 0.5, Number.NaN]);
        const dy = dyOf(n, n + 4);
        const t = core.tanhBackward(f64(y), f64(dy)).data() as Float64Array;
        const s = core.sigmoidBackward(f64(y), f64(dy)).data() as Float64Array;
        const tRef = (i: number) => dy[i] * ((1 - y[i]) * (1 + y[i]));
        const sRef = (i: number) => dy[i] * (y[i] * (1 - y[i]));
        checkAll(
          `tanhBackward n=${n}`,
          t,
          tRef,
          (_, r) => 2 * ulpF64(r),
          (i) => `y = ${y[i]}`,
        );
        checkAll(
          `sigmoidBackward n=${n}`,
          s,
          sRef,
          (_, r) => 2 * ulpF64(r),
          (i) => `y = ${y[i]}`,
        );
      });
    }
  });

  // Relative to the terms' size, as the f32 test (test/elementwise-math.test.ts) does.
  it("geluBackward: dy·gelu'(x) within 5·(1 + |u|)·2⁻⁵³ of |dy|·(|σ| + |x·σ(1−σ)·u'|)", () => {
    for (const n of SIZES) {
      scope(() => {
        const x = inputs(n, n + 30, -30, 8, [...EDGES64, -0.75, -5, -26, 1e100, -1e100]);
        const dy = dyOf(n, n + 31);
        const got = core.geluBackward(f64(x), f64(dy)).data() as Float64Array;
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
          (i) => (Number.isNaN(x[i]) ? Number.NaN : dy[i] * (parts(x[i]).sig + parts(x[i]).term)),
          (i) => {
            const { u, sig, term, xdu } = parts(x[i]);
            // the limits 0 (u = -inf) and dy (u = inf) come out exactly, as does dy = 0
            if (!Number.isFinite(u) || dy[i] === 0) return 0;
            const mag = Math.abs(sig) + Math.abs(term);
            const rel = (1 + Math.abs(u)) * (5 * U64 * mag);
            const tiny = Number.isFinite(xdu) ? (1 + Math.abs(xdu)) * MIN_SUB : MIN_SUB;
            return Math.abs(dy[i]) * (rel + tiny) + MIN_SUB;
          },
          (i) => `x = ${x[i]}, dy = ${dy[i]}`,
        );
      });
    }
  });
});

describe("f64 activation ops", () => {
  const ops = { relu, gelu, tanh, sigmoid };
  const r = new Rng(64);
  for (const [name, op] of Object.entries(ops)) {
    it(`${name}: the f64 gradient matches central differences`, () => {
      for (const n of [1, 3, 4, 5, 17]) {
        scope(() => {
          const x = randTensor(r, [n], "f64", 2);
          const w = randTensor(r, [n], "f64");
          gradCheck({ x }, (p) => sum(mul(op(p.x), w)));
        });
      }
    });
  }
});
