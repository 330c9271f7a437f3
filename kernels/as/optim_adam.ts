// Fused Adam / AdamW step, torch.optim.Adam and AdamW's rule (amsgrad=False, maximize=False),
// one pass that reads p, g, m, v and writes p, m, v. The caller computes the step's scalars:
//   stepSize = lr / (1 − β1^t),  bc2Sqrt = sqrt(1 − β2^t),  w = 1 − β1,  c2 = 1 − β2,
//   l2 = weightDecay for Adam (else 0),  decay = 1 − lr·weightDecay for AdamW (else 1).
// Per element:
//   g' = g + l2·p                      (Adam's L2 term, only when l2 ≠ 0)
//   p  = p·decay                       (AdamW's decoupled decay, only when decay ≠ 1)
//   m  = lerp(m, g', w)                torch's lerp: m + w·(g' − m) for w < 0.5, else g' − (1 − w)·(g' − m)
//   v  = β2·v + (c2·g')·g'
//   p  = p − stepSize · m / (sqrt(v) / bc2Sqrt + eps)
// m and v are stored with subnormals flushed to ±0 (see flush.ts), and those values are used.
// The relaxed build fuses each a·b + c into relaxed_madd (and c − a·b into relaxed_nmadd).
// Reference: the float64 loop and the Math.fround emulation of this rule in test/optim.test.ts.

import { flushSubnormal, flushSubnormals } from "./flush";
import { madd, nmadd } from "./math";

// One loop per combination of the flags: they are constants at every call site, so each
// inlined copy keeps only its own branches.
// @ts-ignore: decorator
@inline
function adamLoop<T>(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  stepSize: T,
  bc2Sqrt: T,
  eps: T,
  w: T,
  beta2: T,
  c2: T,
  l2: T,
  decay: T,
  hasL2: bool,
  hasDecay: bool,
  smallWeight: bool,
): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  // torch's lerp for a large weight scales by 1 − w and subtracts from g' (so that w = 1 gives g').
  const lerpScale: T = smallWeight ? w : <T>1 - w;
  const vStep = v128.splat<T>(stepSize);
  const vBc2 = v128.splat<T>(bc2Sqrt);
  const vEps = v128.splat<T>(eps);
  const vLerp = v128.splat<T>(lerpScale);
  const vBeta2 = v128.splat<T>(beta2);
  const vC2 = v128.splat<T>(c2);
  const vL2 = v128.splat<T>(l2);
  const vDecay = v128.splat<T>(decay);
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    let pv = v128.load(p + o);
    let gv = v128.load(g + o);
    const mv = v128.load(m + o);
    if (hasL2) gv = madd<T>(vL2, pv, gv);
    if (hasDecay) pv = v128.mul<T>(pv, vDecay);
    const diff = v128.sub<T>(gv, mv);
    const m1 = flushSubnormals<T>(smallWeight ? madd<T>(vLerp, diff, mv) : nmadd<T>(vLerp, diff, gv));
    const v1 = flushSubnormals<T>(madd<T>(v128.mul<T>(vC2, gv), gv, v128.mul<T>(v128.load(v + o), vBeta2)));
    const denom = v128.add<T>(v128.div<T>(v128.sqrt<T>(v1), vBc2), vEps);
    v128.store(m + o, m1);
    v128.store(v + o, v1);
    v128.store(p + o, nmadd<T>(vStep, v128.div<T>(m1, denom), pv));
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    let pv = load<T>(p + o);
    let gv = load<T>(g + o);
    const mv = load<T>(m + o);
    if (hasL2) gv = l2 * pv + gv;
    if (hasDecay) pv = pv * decay;
    const m1 = flushSubnormal<T>(smallWeight ? lerpScale * (gv - mv) + mv : gv - lerpScale * (gv - mv));
    const v1 = flushSubnormal<T>(c2 * gv * gv + load<T>(v + o) * beta2);
    const denom = sqrt<T>(v1) / bc2Sqrt + eps;
    store<T>(m + o, m1);
    store<T>(v + o, v1);
    store<T>(p + o, pv - stepSize * (m1 / denom));
  }
}

// @ts-ignore: decorator
@inline
function adam<T>(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  stepSize: T,
  bc2Sqrt: T,
  eps: T,
  w: T,
  beta2: T,
  c2: T,
  l2: T,
  decay: T,
): void {
  const small = w < <T>0.5;
  if (l2 != 0) {
    if (decay != 1) {
      if (small) adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, true, true, true);
      else adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, true, true, false);
    } else if (small) adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, true, false, true);
    else adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, true, false, false);
  } else if (decay != 1) {
    if (small) adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, false, true, true);
    else adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, false, true, false);
  } else if (small) adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, false, false, true);
  else adamLoop<T>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay, false, false, false);
}

export function adam_f32(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  stepSize: f32,
  bc2Sqrt: f32,
  eps: f32,
  w: f32,
  beta2: f32,
  c2: f32,
  l2: f32,
  decay: f32,
): void {
  adam<f32>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay);
}

export function adam_f64(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  stepSize: f64,
  bc2Sqrt: f64,
  eps: f64,
  w: f64,
  beta2: f64,
  c2: f64,
  l2: f64,
  decay: f64,
): void {
  adam<f64>(p, g, m, v, n, stepSize, bc2Sqrt, eps, w, beta2, c2, l2, decay);
}
