// Optimizers against torch's update rules written out below in plain JavaScript numbers:
// - in float64 (`exact` rounding): the reference the f64 kernels and, within a stated tolerance,
//   the f32 kernels are compared to;
// - in float32 (`Math.fround` after every operation): the scalar implementation the f32 kernels
//   must reproduce bit for bit on the plain SIMD build (and within a few ulps with relaxed FMA).
import { describe, expect, it } from "vitest";
import type { DType } from "../src/core/dtype.ts";
import { configure, runtime } from "../src/core/runtime.ts";
import { scope } from "../src/core/scope.ts";
import { tensor } from "../src/core/tensor.ts";
import { type Tree, treeLeaves, treeMap } from "../src/core/tree.ts";
import { adam, adamw, type LearningRate, type Optimizer, type OptState, sgd } from "../src/optim/index.ts";

// Three pool threads, so that the large size below is split into three ranges.
configure({ threads: 3 });

const SIZES = [0, 1, 3, 4, 5, 17, 1023, 3 * 131072 + 12345];
const STEPS = 6;

type Round = (x: number) => number;
const exact: Round = (x) => x;
const roundOf = (dtype: DType): Round => (dtype === "f32" ? Math.fround : exact);

// ---- torch's rules, one step over plain arrays (in place) ----

/**
 * The optimizers store their state with subnormals replaced by a zero of the same sign
 * (kernels/as/flush.ts): torch's rule with the FTZ bit set. `r` tells the precision.
 */
function flushSubnormal(x: number, r: Round): number {
  const minNormal = r === exact ? 2 ** -1022 : 2 ** -126;
  return Math.abs(x) < minNormal ? (x < 0 || Object.is(x, -0) ? -0 : 0) : x;
}

interface SgdConfig {
  lr: LearningRate;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD._single_tensor_sgd for one parameter; `step` counts earlier updates. */
function sgdReference(p: Float64Array, g: Float64Array, buf: Float64Array, step: number, c: SgdConfig, r: Round) {
  const lr = r(typeof c.lr === "number" ? c.lr : c.lr(step));
  const wd = r(c.weightDecay ?? 0);
  const momentum = r(c.momentum ?? 0);
  const alpha = r(1 - (c.dampening ?? 0));
  for (let i = 0; i < p.length; i++) {
    let d = g[i];
    if (wd !== 0) d = r(d + r(wd * p[i])); // grad = grad.add(param, alpha=weight_decay)
    if (momentum !== 0) {
      buf[i] = flushSubnormal(step === 0 ? d : r(r(buf[i] * momentum) + r(alpha * d)), r); // buf.mul_(momentum).add_(grad, alpha=1-dampening)
      d = c.nesterov ? r(d + r(momentum * buf[i])) : buf[i]; // grad.add(buf, alpha=momentum) or buf
    }
    p[i] = r(p[i] + r(-lr * d)); // param.add_(grad, alpha=-lr)
  }
}

interface AdamConfig {
  lr: LearningRate;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam / AdamW (_single_tensor_adam, amsgrad off) for one parameter. */
function adamReference(
  p: Float64Array,
  g: Float64Array,
  m: Float64Array,
  v: Float64Array,
  step: number,
  c: AdamConfig,
  decoupled: boolean,
  r: Round,
) {
  const lr = typeof c.lr === "number" ? c.lr : c.lr(step);
  const beta1 = c.beta1 ?? 0.9;
  const beta2 = c.beta2 ?? 0.999;
  const wd = c.weightDecay ?? (decoupled ? 0.01 : 0);
  const t = step + 1;
  const stepSize = r(lr / (1 - beta1 ** t)); // step_size = lr / bias_correction1
  const bc2Sqrt = r(Math.sqrt(1 - beta2 ** t)); // bias_correction2_sqrt
  const weight = r(1 - beta1);
  const eps = r(c.eps ?? 1e-8);
  for (let i = 0; i < p.length; i++) {
    let grad = g[i];
    if (wd !== 0 && decoupled) p[i] = r(p[i] * r(1 - lr * wd)); // param.mul_(1 - lr * weight_decay)
    if (wd !== 0 && !decoupled) grad = r(grad + r(r(wd) * p[i])); // grad.add(param, alpha=weight_decay)
    // exp_avg.lerp_(grad, 1 - beta1), with torch's two forms of lerp
    const diff = r(grad - m[i]);
    m[i] = flushSubnormal(Math.abs(weight) < 0.5 ? r(m[i] + r(weight * diff)) : r(grad - r(diff * r(1 - weight))), r);
    v[i] = flushSubnormal(r(r(v[i] * r(beta2)) + r(r(r(1 - beta2) * grad) * grad)), r); // mul_(beta2).addcmul_(grad, grad, 1-beta2)
    const denom = r(r(r(Math.sqrt(v[i])) / bc2Sqrt) + eps); // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    p[i] = r(p[i] + r(-stepSize * r(m[i] / denom))); // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

// ---- data ----

function rng(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

function randomValues(n: number, seed: number, scale: number, r: Round): Float64Array {
  const { normal } = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = r(normal() * scale);
  return out;
}

/** NaN, ±inf, ±0, subnormals, huge and ordinary values, in a seeded mix. */
function edgeValues(n: number, seed: number, dtype: DType): Float64Array {
  const tiny = dtype === "f32" ? 1e-40 : 5e-324;
  const huge = dtype === "f32" ? 3e38 : 1e300;
  const specials = [Number.NaN, Infinity, -Infinity, 0, -0, tiny, -tiny, huge, -huge, 1, -2.5];
  const { uniform, normal } = rng(seed);
  const r = roundOf(dtype);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++)
    out[i] = r(uniform() < 0.5 ? specials[Math.floor(uniform() * specials.length)] : normal());
  return out;
}

const toTensor = (values: ArrayLike<number>, dtype: DType) =>
  tensor(dtype === "f32" ? Float32Array.from(values) : Float64Array.from(values), [values.length], { dtype });

// ---- comparison ----

/** How far element `i` may be from `want`; `scale` is the largest finite magnitude its inputs reached. */
type Tolerance = (want: number, scale: number) => number;

/** Index and values of the first element where `got` differs from `want` by more than `tol`. */
function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, scale: ArrayLike<number>) {
  if (got.length !== want.length) return { index: -1, got: got.length, want: want.length };
  for (let i = 0; i < want.length; i++) {
    const a = got[i];
    const b = want[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (Object.is(a, b)) continue;
    if (Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= tol(b, scale[i])) continue;
    return { index: i, got: a, want: b };
  }
  return undefined;
}

const bitExact: Tolerance = () => -1; // only equal values (and NaN for NaN) pass
/**
 * Plain SIMD reproduces the scalar rule bit for bit. Relaxed FMA rounds a product once instead of
 * twice, so there 16 ulps per step of the largest input magnitude are allowed (cancellation makes
 * a bound relative to the result meaningless).
 */
const emulationTolerance = (dtype: DType): Tolerance =>
  runtime().variant === "simd"
    ? bitExact
    : (_, scale) => STEPS * 16 * (dtype === "f32" ? 2 ** -24 : 2 ** -53) * Math.max(1, scale);
/**
 * f32 against the float64 rule: at most 2⁻²¹ per step relative to max(1, |p|), i.e. 8 f32 ulps
 * of the update per step (measured: under 1.3 ulps per step at these values).
 */
const f32Tolerance: Tolerance = (w) => STEPS * 2 ** -21 * Math.max(1, Math.abs(w));

// ---- running an optimizer and its reference side by side ----

/** One reference step over one leaf: params, grads and slot arrays updated in place. */
type Reference = (p: Float64Array, g: Float64Array, slots: Float64Array[], step: number) => void;

type Values = ArrayLike<number>;

interface Run {
  got: Values[]; // params per leaf after the kernel steps
  want: Values[]; // params per leaf after the reference steps
  slotsGot: Values[];
  slotsWant: Values[];
  scale: Values[]; // per leaf and element: the largest finite |p| or |g| the reference saw
}

/** Runs `steps` updates of `opt` and of `reference` from the same values; leaves of sizes `sizes`. */
function runBoth(
  opt: Optimizer,
  reference: Reference,
  sizes: number[],
  dtype: DType,
  values: (n: number, seed: number) => Float64Array,
  slotCount: number,
  steps = STEPS,
): Run {
  return scope(() => {
    const r = roundOf(dtype);
    const p0 = sizes.map((n, i) => values(n, 100 + i));
    const params = p0.map((v) => toTensor(v, dtype));
    let state = opt.init(params);
    const want = p0.map((v) => v.slice());
    const refSlots = sizes.map((n) => Array.from({ length: slotCount }, () => new Float64Array(n)));
    const scale = sizes.map((n) => new Float64Array(n));
    const widen = (leaf: number, values: Float64Array) => {
      for (let j = 0; j < values.length; j++) {
        const x = Math.abs(values[j]);
        if (x > scale[leaf][j] && x !== Infinity) scale[leaf][j] = x;
      }
    };
    for (const [i, v] of p0.entries()) widen(i, v);
    for (let step = 0; step < steps; step++) {
      const g = sizes.map((n, i) => values(n, 1000 * (step + 1) + i).map(r));
      const grads = g.map((v) => toTensor(v, dtype));
      state = opt.update(params, grads, state);
      for (let i = 0; i < sizes.length; i++) {
        reference(want[i], g[i], refSlots[i], step);
        widen(i, g[i]);
        widen(i, want[i]);
      }
    }
    expect(state.step).toBe(steps);
    const slotLeaves = Object.keys(state.slots)
      .sort()
      .flatMap((k) => treeLeaves(state.slots[k]));
    return {
      got: params.map((t) => t.data().slice()),
      want,
      slotsGot: slotLeaves.map((t) => t.data().slice()),
      slotsWant: Object.keys(state.slots)
        .sort()
        .flatMap((_, s) => refSlots.map((leaf) => leaf[s])),
      scale,
    };
  });
}

function expectClose(run: Run, tol: Tolerance, what: string) {
  const leaves = run.got.length;
  run.got.forEach((got, i) => {
    const mismatch = firstMismatch(got, run.want[i], tol, run.scale[i]);
    expect(mismatch, `${what}: params leaf ${i} (size ${got.length})`).toBeUndefined();
  });
  run.slotsGot.forEach((got, i) => {
    const mismatch = firstMismatch(got, run.slotsWant[i], tol, run.scale[i % leaves]);
    expect(mismatch, `${what}: slot leaf ${i}`).toBeUndefined();
  });
}

// ---- the configurations under test ----

const decayingLr = (base: number) => (step: number) => base / (1 + step);

const SGD_CONFIGS: [string, SgdConfig][] = [
  ["plain", { lr: 0.1 }],
  ["weight decay", { lr: 0.05, weightDecay: 0.01 }],
  ["momentum", { lr: 0.05, momentum: 0.9 }],
  ["momentum + dampening + weight decay", { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.02 }],
  ["nesterov + weight decay", { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.01 }],
  ["nesterov, scheduled lr", { lr: decayingLr(0.1), momentum: 0.9, nesterov: true }],
];

const ADAM_CONFIGS: [string, "adam" | "adamw", AdamConfig][] = [
  ["adam defaults", "adam", { lr: 1e-2 }],
  ["adam L2 weight decay", "adam", { lr: 1e-2, weightDecay: 0.1 }],
  [
    "adam small beta1 (torch's second lerp form), scheduled lr",
    "adam",
    { lr: decayingLr(3e-2), beta1: 0.3, beta2: 0.5 },
  ],
  ["adam beta1 0, large eps", "adam", { lr: 1e-3, beta1: 0, beta2: 0.99, eps: 1e-3 }],
  ["adamw defaults (decay 0.01)", "adamw", { lr: 1e-2 }],
  ["adamw decay 0.3, scheduled lr", "adamw", { lr: decayingLr(5e-2), weightDecay: 0.3, beta2: 0.9 }],
  ["adamw no decay", "adamw", { lr: 1e-2, weightDecay: 0 }],
];

function sgdCase(c: SgdConfig) {
  const opt = sgd(c);
  const slotCount = (c.momentum ?? 0) !== 0 ? 1 : 0;
  const reference =
    (r: Round): Reference =>
    (p, g, slots, step) =>
      sgdReference(p, g, slots[0] ?? new Float64Array(0), step, c, r);
  return { opt, reference, slotCount };
}

function adamCase(kind: "adam" | "adamw", c: AdamConfig) {
  const opt = kind === "adam" ? adam(c) : adamw(c);
  const reference =
    (r: Round): Reference =>
    (p, g, slots, step) =>
      adamReference(p, g, slots[0], slots[1], step, c, kind === "adamw", r);
  return { opt, reference, slotCount: 2 };
}

const CASES = [
  ...SGD_CONFIGS.map(([name, c]) => ({ name: `sgd ${name}`, ...sgdCase(c) })),
  ...ADAM_CONFIGS.map(([name, kind, c]) => ({ name, ...adamCase(kind, c) })),
];

describe.each(CASES)("$name", ({ opt, reference, slotCount }) => {
  const random = (dtype: DType) => (n: number, seed: number) => randomValues(n, seed, 1, roundOf(dtype));

  it("f64 kernels follow the float64 rule exactly, at every size", () => {
    const run = runBoth(opt, reference(exact), SIZES, "f64", random("f64"), slotCount);
    expectClose(run, emulationTolerance("f64"), "f64");
  });

  it("f32 kernels follow the float32 scalar rule exactly, at every size", () => {
    const run = runBoth(opt, reference(Math.fround), SIZES, "f32", random("f32"), slotCount);
    expectClose(run, emulationTolerance("f32"), "f32");
  });

  it("f32 kernels stay within 2^-21 per step of the float64 rule", () => {
    const run = runBoth(opt, reference(exact), SIZES.slice(0, -1), "f32", random("f32"), slotCount);
    run.got.forEach((got, i) => {
      expect(firstMismatch(got, run.want[i], f32Tolerance, run.scale[i]), `leaf ${i}`).toBeUndefined();
    });
  });

  it.each(["f32", "f64"] as const)(
    "%s edge values (NaN, ±inf, ±0, subnormal, huge) follow the scalar rule",
    (dtype) => {
      const r = roundOf(dtype);
      const run = runBoth(opt, reference(r), [1023], dtype, (n, seed) => edgeValues(n, seed, dtype), slotCount);
      expectClose(run, emulationTolerance(dtype), dtype);
    },
  );
});

// A second oracle for SGD's momentum buffer, independent of sgdReference above: values worked
// out by hand (dyadic, so exact in f32 and f64). torch's first step sets buf = grad with no
// dampening; later steps buf = momentum·buf + (1 − dampening)·grad.
describe("sgd momentum by hand", () => {
  // Nine elements (two SIMD vectors and a tail), element i scaled by s = 2^-(i mod 3).
  const s = Array.from({ length: 9 }, (_, i) => 2 ** -(i % 3));
  const leaf = (dtype: DType, values: number[]) => tensor(values, [values.length], { dtype });
  const run = (dtype: DType, opts: Parameters<typeof sgd>[0], p0: number, grads: number[]) =>
    scope(() => {
      const opt = sgd(opts);
      const w = leaf(
        dtype,
        s.map(() => p0),
      );
      let state = opt.init([w]);
      const params: number[][] = [];
      const bufs: number[][] = [];
      for (const g of grads) {
        state = opt.update(
          [w],
          [
            leaf(
              dtype,
              s.map((x) => g * x),
            ),
          ],
          state,
        );
        params.push(w.toArray());
        bufs.push(treeLeaves(state.slots.momentum)[0].toArray());
      }
      return { params, bufs };
    });

  it.each(["f32", "f64"] as const)("%s: dampening 0.5 skips the first step, then weighs each gradient", (dtype) => {
    // lr 0.25, momentum 0.5, dampening 0.5, p = 1, grads 2, 4, 0:
    //   step 1: buf = 2                     p = 1 − 0.25·2    = 0.5
    //   step 2: buf = 0.5·2 + 0.5·4 = 3     p = 0.5 − 0.25·3  = −0.25
    //   step 3: buf = 0.5·3 + 0.5·0 = 1.5   p = −0.25 − 0.375 = −0.625
    const { params, bufs } = run(dtype, { lr: 0.25, momentum: 0.5, dampening: 0.5 }, 1, [2, 4, 0]);
    expect(bufs).toEqual([2, 3, 1.5].map((b) => s.map((x) => b * x)));
    expect(params).toEqual([0.5, 1.25, 1.625].map((c) => s.map((x) => 1 - c * x)));
  });

  it.each(["f32", "f64"] as const)("%s: weight decay enters the first buffer undamped", (dtype) => {
    // lr 0.25, momentum 0.5, dampening 0.5, weight decay 0.5, p = 1, grad 2·s:
    //   g' = 2·s + 0.5·1, buf = g', p = 1 − 0.25·g'
    const { params, bufs } = run(dtype, { lr: 0.25, momentum: 0.5, dampening: 0.5, weightDecay: 0.5 }, 1, [2]);
    expect(bufs[0]).toEqual(s.map((x) => 2 * x + 0.5));
    expect(params[0]).toEqual(s.map((x) => 1 - 0.25 * (2 * x + 0.5)));
  });

  it.each(["f32", "f64"] as const)("%s: nesterov looks ahead from the first step", (dtype) => {
    // lr 0.25, momentum 0.5, p = 1, grads 2, 4:
    //   step 1: buf = 2,             d = 2 + 0.5·2 = 3,   p = 1 − 0.75     = 0.25
    //   step 2: buf = 0.5·2 + 4 = 5, d = 4 + 0.5·5 = 6.5, p = 0.25 − 1.625 = −1.375
    const { params, bufs } = run(dtype, { lr: 0.25, momentum: 0.5, nesterov: true }, 1, [2, 4]);
    expect(bufs).toEqual([2, 5].map((b) => s.map((x) => b * x)));
    expect(params).toEqual([0.75, 2.375].map((c) => s.map((x) => 1 - c * x)));
  });
});

describe("threaded path", () => {
  it("splits a large leaf across the three pool threads, and a small one not", () => {
    const pool = runtime().pool;
    const run = pool.run.bind(pool);
    const jobs: number[] = [];
    pool.run = (js) => {
      jobs.push(js.length);
      run(js);
    };
    try {
      scope(() => {
        const opt = adamw({ lr: 1e-3 });
        const params = [toTensor(new Array(SIZES.at(-1)!).fill(1), "f32"), toTensor([1, 2, 3], "f32")];
        opt.update(params, params, opt.init(params));
      });
    } finally {
      pool.run = run;
    }
    expect(jobs).toEqual([3, 1]);
  });
});

// A tree with leaves of both dtypes; the optimizer handles each leaf in its own dtype.
const makeParams = (seed: number) => ({
  w: toTensor(randomValues(37, seed, 1, Math.fround), "f32"),
  layers: [
    { b: toTensor(randomValues(5, seed + 1, 1, exact), "f64") },
    toTensor(randomValues(4, seed + 2, 1, Math.fround), "f32"),
  ],
});

const copyTree = (tree: Tree) => treeMap((t) => tensor(t.data().slice(), t.shape, { dtype: t.dtype }), tree);

const values = (tree: Tree) => treeLeaves(tree).map((t) => Array.from(t.data()));

describe("state", () => {
  it("init gives step 0, zeroed slots shaped like params, and a JSON-able record", () => {
    scope(() => {
      const params = makeParams(1);
      const s = adam({ lr: 0.1 }).init(params);
      expect(s.kind).toBe("adam");
      expect(s.step).toBe(0);
      expect(Object.keys(s.slots).sort()).toEqual(["m", "v"]);
      for (const name of ["m", "v"]) {
        const leaves = treeLeaves(s.slots[name]);
        expect(leaves.map((t) => t.describe())).toEqual(treeLeaves(params).map((t) => t.describe()));
        for (const t of leaves) expect(Array.from(t.data()).every((x) => Object.is(x, 0))).toBe(true);
      }
      const record = { kind: s.kind, step: s.step, hyper: s.hyper };
      expect(JSON.parse(JSON.stringify(record))).toEqual({
        kind: "adam",
        step: 0,
        hyper: { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
      });
      expect(sgd({ lr: 0.1 }).init(params).slots).toEqual({});
      expect(sgd({ lr: (n) => n, momentum: 0.5 }).init(params).hyper.lr).toBe("schedule");
    });
  });

  it("update returns a new state with step + 1 and reuses the slot tensors in place", () => {
    scope(() => {
      const params = makeParams(2);
      const opt = sgd({ lr: 0.1, momentum: 0.9 });
      const s0 = opt.init(params);
      const s1 = opt.update(params, makeParams(3), s0);
      expect(s1).not.toBe(s0);
      expect([s0.step, s1.step]).toEqual([0, 1]);
      expect(treeLeaves(s1.slots.momentum)).toEqual(treeLeaves(s0.slots.momentum));
    });
  });

  it("feeds the schedule the state's own count of real updates", () => {
    scope(() => {
      const seen: number[] = [];
      const opt = adam({
        lr: (step) => {
          seen.push(step);
          return 1e-3;
        },
      });
      const params = makeParams(4);
      let s = opt.init(params);
      for (let i = 0; i < 3; i++) s = opt.update(params, makeParams(10 + i), s);
      // A skipped step is an update not made: the count, and so the schedule, stays put.
      s = opt.update(params, makeParams(20), { ...s, step: 7 });
      expect(seen).toEqual([0, 1, 2, 7]);
      expect(s.step).toBe(8);
    });
  });

  it("a state rebuilt from its JSON record and copied tensors continues bit for bit", () => {
    scope(() => {
      const opt = adamw({ lr: (step) => 1e-2 / (1 + step), weightDecay: 0.1 });
      const params = makeParams(5);
      let s = opt.init(params);
      for (let i = 0; i < 3; i++) s = opt.update(params, makeParams(30 + i), s);
      const record = JSON.stringify({ kind: s.kind, step: s.step, hyper: s.hyper });
      const saved = { params: copyTree(params), m: copyTree(s.slots.m), v: copyTree(s.slots.v) };
      for (let i = 3; i < 6; i++) s = opt.update(params, makeParams(30 + i), s);

      let restored: OptState = { ...JSON.parse(record), slots: { m: saved.m, v: saved.v } };
      for (let i = 3; i < 6; i++) restored = opt.update(saved.params, makeParams(30 + i), restored);
      expect(values(saved.params)).toEqual(values(params));
      expect(values(restored.slots.v)).toEqual(values(s.slots.v));
      expect(restored.step).toBe(6);
    });
  });
});

describe("bad input", () => {
  const f32 = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);

  it("names the leaf path and both shapes/dtypes when grads do not match params", () => {
    scope(() => {
      const opt = adam({ lr: 0.1 });
      const params = { w: f32([3, 4]), layers: [f32([2]), f32([4, 3])] };
      const s = opt.init(params);
      const bad = (grads: Tree) => () => opt.update(params, grads, s);
      expect(bad({ w: f32([3, 4]), layers: [f32([2]), f32([3, 4])] })).toThrow(
        "plait: adam.update: grads.layers[1] is f32[3, 4], expected f32[4, 3] like params.layers[1]",
      );
      expect(bad({ w: f32([12]), layers: [f32([2]), f32([4, 3])] })).toThrow(
        "grads.w is f32[12], expected f32[3, 4] like params.w",
      );
      const f64 = tensor(new Float64Array(12), [3, 4], { dtype: "f64" });
      expect(bad({ w: f64, layers: [f32([2]), f32([4, 3])] })).toThrow("grads.w is f64[3, 4], expected f32[3, 4]");
      expect(bad({ w: f32([3, 4]), layers: [f32([2])] })).toThrow(
        "plait: adam.update: grads does not have the structure of params: grads.layers is an array of 1, params.layers is an array of 2",
      );
      expect(bad({ w: f32([3, 4]) })).toThrow(
        "grads is an object with keys [w], params is an object with keys [layers, w]",
      );
      expect(bad({ w: { x: f32([3, 4]) }, layers: [f32([2]), f32([4, 3])] })).toThrow(
        "grads.w is an object with keys [x], params.w is a tensor",
      );
    });
  });

  it("checks every leaf before updating any", () => {
    scope(() => {
      const opt = sgd({ lr: 0.1 });
      const params = [tensor([1, 2], [2]), tensor([3], [1])];
      expect(() => opt.update(params, [tensor([1, 1], [2]), tensor([1, 1], [2])], opt.init(params))).toThrow(
        "grads[1] is f32[2], expected f32[1] like params[1]",
      );
      expect(Array.from(params[0].data())).toEqual([1, 2]);
    });
  });

  // f16/bf16 params (true half precision) are tested in test/precision.test.ts.
  it("refuses parameters that are not float tensors", () => {
    scope(() => {
      const params = { w: tensor([1, 2, 3], [3], { dtype: "i32" }) };
      expect(() => sgd({ lr: 0.1 }).init(params)).toThrow(
        "plait: sgd.init: params.w is i32[3]; optimizers update f64, f32, f16 or bf16 tensors",
      );
    });
  });

  it("refuses a state of another optimizer, or one that does not match params", () => {
    scope(() => {
      const params = { w: f32([3]) };
      const grads = { w: f32([3]) };
      const a = adam({ lr: 0.1 });
      expect(() => a.update(params, grads, sgd({ lr: 0.1 }).init(params))).toThrow(
        "plait: adam.update: argument state has kind sgd, expected adam",
      );
      expect(() => sgd({ lr: 0.1 }).update(params, grads, sgd({ lr: 0.1, momentum: 0.9 }).init(params))).toThrow(
        "plait: sgd.update: state.slots has [momentum], expected []",
      );
      const other = a.init({ w: f32([2]) });
      expect(() => a.update(params, grads, other)).toThrow("state.slots.m.w is f32[2], expected f32[3] like params.w");
      expect(() => a.update(params, grads, { ...a.init(params), step: -1 })).toThrow(
        "plait: adam.update: state.step must be a non-negative integer, got -1",
      );
    });
  });

  it("refuses bad hyperparameters by name", () => {
    expect(() => sgd({ lr: Number.NaN })).toThrow("plait: sgd: option lr must be a finite number ≥ 0, got NaN");
    expect(() => sgd({ lr: -1 })).toThrow("option lr must be a finite number ≥ 0, got -1");
    expect(() => sgd({ lr: "0.1" as any })).toThrow('option lr must be a finite number ≥ 0, got "0.1"');
    expect(() => sgd({ lr: 0.1, momentum: -0.5 })).toThrow("option momentum must be a finite number ≥ 0, got -0.5");
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow("plait: sgd: nesterov needs momentum > 0 and dampening 0");
    expect(() => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow("dampening 0.1");
    expect(() => sgd({ lr: 0.1, weightDecay: Infinity })).toThrow("option weightDecay must be a finite number ≥ 0");
    expect(() => adam({ lr: 0.1, beta1: 1 })).toThrow(
      "plait: adam: option beta1 must be a finite number in [0, 1), got 1",
    );
    expect(() => adam({ lr: 0.1, beta2: -0.1 })).toThrow("option beta2 must be a finite number in [0, 1), got -0.1");
    expect(() => adamw({ lr: 0.1, eps: 0 })).toThrow("plait: adamw: option eps must be a finite number > 0, got 0");
    expect(() => adamw({ lr: 0.1, eps: Number.NaN })).toThrow("option eps must be a finite number > 0, got NaN");
    expect(() => adamw({ lr: 0.1, weightDecay: -1 })).toThrow("option weightDecay must be a finite number ≥ 0, got -1");
  });

  it("refuses a schedule value that is not a finite learning rate, before touching params", () => {
    scope(() => {
      const params = [tensor([1, 2], [2])];
      const opt = adam({ lr: (step) => (step === 0 ? Number.NaN : -1) });
      expect(() => opt.update(params, params, opt.init(params))).toThrow(
        "plait: adam.update: the learning-rate schedule returned NaN at step 0, expected a finite number ≥ 0",
      );
      expect(() => opt.update(params, params, { ...opt.init(params), step: 1 })).toThrow("returned -1 at step 1");
      expect(Array.from(params[0].data())).toEqual([1, 2]);
    });
  });
});

describe("subnormal state", () => {
  // A slot whose gradient stays zero decays by β each step; the kernels store ±0 where the
  // value would be subnormal (see kernels/as/flush.ts), so later steps never compute on one.
  const subnormal = (x: number, dtype: DType) => x !== 0 && Math.abs(x) < (dtype === "f32" ? 2 ** -126 : 2 ** -1022);

  it.each(["f32", "f64"] as const)("%s momentum and moments decay to ±0, never through subnormals", (dtype) => {
    scope(() => {
      const start = dtype === "f32" ? 2 ** -120 : 2 ** -1016;
      // Lanes 0–7 take the SIMD loop, lanes 8–10 the scalar tail; signs alternate.
      const first = Array.from({ length: 11 }, (_, i) => (i % 2 ? -start : start));
      const zero = new Array(11).fill(0);
      for (const opt of [sgd({ lr: 0.1, momentum: 0.5 }), adam({ lr: 0.1, beta1: 0.5, beta2: 0.5 })]) {
        const params = [toTensor(new Array(11).fill(1), dtype)];
        let state = opt.update(params, [toTensor(first, dtype)], opt.init(params));
        const seen: number[] = [];
        for (let step = 0; step < 12; step++) {
          state = opt.update(params, [toTensor(zero, dtype)], state);
          for (const slot of Object.values(state.slots)) seen.push(...treeLeaves(slot)[0].data());
        }
        expect(seen.filter((x) => subnormal(x, dtype))).toEqual([]);
        const last = Object.values(state.slots).flatMap((slot) => Array.from(treeLeaves(slot)[0].data()));
        expect(last.every((x) => x === 0)).toBe(true);
      }
    });
  });
});
