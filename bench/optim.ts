// Suite "optim": GB/s of the fused optimizer kernels on 64 MiB of f32 parameters (16 Mi
// elements). GB/s counts bytes read + bytes written: SGD with momentum reads p, g, buf and writes
// p, buf (20 B per parameter, 320 MiB a step); AdamW reads p, g, m, v and writes p, m, v (28 B,
// 448 MiB a step); `memory.copy` of the 64 MiB of parameters moves 128 MiB.
// Peers measured in the same run: `memory.copy` inside WASM (the speed of light) and a plain-JS
// loop doing the same update over the same memory. Also `update()` through the public API, with
// the leaf split over every pool thread.
import { adamw, runtime, sgd, Tensor, treeLeaves } from "plait";
import { type Measurement, medianSeconds } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const N = 16 << 20; // parameters
const BYTES = N * 4;
const LR = 1e-3;
const MOMENTUM = 0.9;
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;
const DECAY = 0.01;

/** SGD with momentum, dampening 0, no weight decay, after the first step. */
function jsSgdMomentum(p: Float32Array, g: Float32Array, buf: Float32Array): void {
  for (let i = 0; i < p.length; i++) {
    const b = buf[i] * MOMENTUM + g[i];
    buf[i] = b;
    p[i] -= LR * b;
  }
}

/** AdamW at step t, written as torch does it. */
function jsAdamW(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number): void {
  const stepSize = LR / (1 - BETA1 ** t);
  const bc2Sqrt = Math.sqrt(1 - BETA2 ** t);
  const decay = 1 - LR * DECAY;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = m[i] + (1 - BETA1) * (gi - m[i]);
    const vi = v[i] * BETA2 + (1 - BETA2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - stepSize * (mi / (Math.sqrt(vi) / bc2Sqrt + EPS));
  }
}

function filled(fill: (i: number) => number): Tensor {
  const t = new Tensor([N], "f32");
  const x = t.data();
  for (let i = 0; i < N; i++) x[i] = fill(i); // also touches every page before timing
  return t;
}

export async function run(): Promise<void> {
  const { k, pool, variant } = runtime();
  const noise = () => (Math.random() - 0.5) * 4; // normal numbers: subnormals stall x86 float units
  const [p, g, buf, m, v, dst] = [noise, noise, noise, () => 0, () => 0, () => 0].map(filled);
  const [pv, gv, bufv, mv, vv] = [p, g, buf, m, v].map((t) => t.data() as Float32Array);
  const gb = (bytes: number, seconds: number) => bytes / seconds / 1e9;
  const rows: Measurement[] = [];
  const row = (name: string, impl: string, value: number) => rows.push({ case: name, impl, value, unit: "GB/s" });

  const copy = async () => gb(2 * BYTES, await medianSeconds(() => k.as.copy_bytes(dst.ptr, p.ptr, BYTES)));
  const copyFirst = await copy();

  const t = 10; // a step well past the first, so the bias corrections are not trivial
  const sgdOpt = sgd({ lr: LR, momentum: MOMENTUM });
  const adamwOpt = adamw({ lr: LR, weightDecay: DECAY });
  let sgdState = sgdOpt.init([p]);
  let adamwState = adamwOpt.init([p]);
  // stepSize, bc2Sqrt, eps, 1 − β1, β2, 1 − β2, L2 term, decoupled decay factor (see optim_adam.ts)
  const adamScalars = [
    LR / (1 - BETA1 ** t),
    Math.sqrt(1 - BETA2 ** t),
    EPS,
    1 - BETA1,
    BETA2,
    1 - BETA2,
    0,
    1 - LR * DECAY,
  ];
  // name, bytes moved, the fused kernel on this thread (with the scalars src/optim passes for
  // these options), the plain-JS loop, update() through the public API
  const cases: [string, number, () => unknown, () => unknown, () => unknown][] = [
    [
      "SGD momentum (p, g, buf)",
      5 * BYTES,
      () => k.as.sgd_momentum_f32(p.ptr, g.ptr, buf.ptr, N, LR, 0, MOMENTUM, 1, 0, 0),
      () => jsSgdMomentum(pv, gv, bufv),
      () => {
        sgdState = sgdOpt.update([p], [g], sgdState);
      },
    ],
    [
      "AdamW (p, g, m, v)",
      7 * BYTES,
      () => k.as.adam_f32(p.ptr, g.ptr, m.ptr, v.ptr, N, ...adamScalars),
      () => jsAdamW(pv, gv, mv, vv, t),
      () => {
        adamwState = adamwOpt.update([p], [g], adamwState);
      },
    ],
  ];
  const fused: Record<string, number> = {};
  const js: Record<string, number> = {};
  for (const [name, bytes, kernel, loop, update] of cases) {
    fused[name] = gb(bytes, await medianSeconds(kernel));
    js[name] = gb(bytes, await medianSeconds(loop, 200));
    const all = gb(bytes, await medianSeconds(update));
    row(name, "plait fused kernel (1 thread)", fused[name]);
    row(name, `plait update() (${pool.size} threads)`, all);
    row(name, "plain JS loop", js[name]);
  }
  // the slower of two copy measurements would flatter the kernels; take the faster
  const copyRate = Math.max(copyFirst, await copy());
  row("copy 64 MiB", "memory.copy (wasm, 1 thread)", copyRate);

  const checks: RatioCheck[] = [];
  for (const [name, target] of [
    ["SGD momentum (p, g, buf)", 0.85],
    ["AdamW (p, g, m, v)", 0.7],
  ] as const) {
    checks.push({ name: `${name} / memory.copy`, ratio: fused[name] / copyRate, target });
  }
  for (const [name] of cases) checks.push({ name: `${name} / plain JS`, ratio: fused[name] / js[name], target: 8 });

  for (const x of [p, g, buf, m, v, dst]) x.dispose();
  for (const s of [sgdState, adamwState]) for (const leaf of Object.values(s.slots).flatMap(treeLeaves)) leaf.dispose();
  report("optim", rows, checks, {
    parameters: N,
    bytes:
      "GB/s = (bytes read + bytes written) / s on 64 MiB of f32 parameters: SGD momentum 320 MiB a step, AdamW 448 MiB, copy 128 MiB",
    threads: `1, and ${pool.size} for the update() rows`,
    variant,
  });
}
