// Fused SGD step, torch.optim.SGD's rule (maximize=False), one pass over p, g (and buf):
//   g' = g + weightDecay·p                            (only when weightDecay ≠ 0, as torch skips it)
//   first step with momentum:  buf = g'               (torch clones the gradient into the buffer)
//   later steps:               buf = momentum·buf + (1 − dampening)·g'
//   d  = nesterov ? g' + momentum·buf : buf           (d = g' without momentum)
//   p  = p − lr·d
// The buffer is stored with subnormals flushed to ±0 (see flush.ts), and that value is used.
// The relaxed build fuses each a·b + c into relaxed_madd (and c − a·b into relaxed_nmadd).
// Reference: the float64 loop and the Math.fround emulation of this rule in test/optim.test.ts.

import { flushSubnormal, flushSubnormals } from "./flush";
import { madd, nmadd } from "./math";

const PLAIN: i32 = 0; // no momentum buffer
const FIRST: i32 = 1; // momentum, first step: the buffer is g'
const MOMENTUM: i32 = 2; // momentum, later steps

// One loop per combination of the flags: they are constants at every call site, so each
// inlined copy keeps only its own branches.
// @ts-ignore: decorator
@inline
function sgdLoop<T>(
  p: usize,
  g: usize,
  buf: usize,
  n: i32,
  lr: T,
  wd: T,
  momentum: T,
  gradScale: T,
  decay: bool,
  mode: i32,
  nesterov: bool,
): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const vlr = v128.splat<T>(lr);
  const vwd = v128.splat<T>(wd);
  const vmom = v128.splat<T>(momentum);
  const vscale = v128.splat<T>(gradScale);
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    const pv = v128.load(p + o);
    let d = v128.load(g + o);
    if (decay) d = madd<T>(vwd, pv, d);
    if (mode != PLAIN) {
      const b = flushSubnormals<T>(mode == FIRST ? d : madd<T>(vscale, d, v128.mul<T>(v128.load(buf + o), vmom)));
      v128.store(buf + o, b);
      d = nesterov ? madd<T>(vmom, b, d) : b;
    }
    v128.store(p + o, nmadd<T>(vlr, d, pv));
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    const pv = load<T>(p + o);
    let d = load<T>(g + o);
    if (decay) d = wd * pv + d;
    if (mode != PLAIN) {
      const b = flushSubnormal<T>(mode == FIRST ? d : gradScale * d + load<T>(buf + o) * momentum);
      store<T>(buf + o, b);
      d = nesterov ? momentum * b + d : b;
    }
    store<T>(p + o, pv - lr * d);
  }
}

// @ts-ignore: decorator
@inline
function sgdMomentum<T>(
  p: usize,
  g: usize,
  buf: usize,
  n: i32,
  lr: T,
  wd: T,
  momentum: T,
  gradScale: T,
  nesterov: bool,
  first: bool,
): void {
  if (wd != 0) {
    if (first) {
      if (nesterov) sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, true, FIRST, true);
      else sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, true, FIRST, false);
    } else if (nesterov) sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, true, MOMENTUM, true);
    else sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, true, MOMENTUM, false);
  } else if (first) {
    if (nesterov) sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, false, FIRST, true);
    else sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, false, FIRST, false);
  } else if (nesterov) sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, false, MOMENTUM, true);
  else sgdLoop<T>(p, g, buf, n, lr, wd, momentum, gradScale, false, MOMENTUM, false);
}

/** SGD without momentum: p −= lr·(g + wd·p). */
export function sgd_f32(p: usize, g: usize, n: i32, lr: f32, wd: f32): void {
  if (wd != 0) sgdLoop<f32>(p, g, 0, n, lr, wd, 0, 0, true, PLAIN, false);
  else sgdLoop<f32>(p, g, 0, n, lr, wd, 0, 0, false, PLAIN, false);
}

export function sgd_f64(p: usize, g: usize, n: i32, lr: f64, wd: f64): void {
  if (wd != 0) sgdLoop<f64>(p, g, 0, n, lr, wd, 0, 0, true, PLAIN, false);
  else sgdLoop<f64>(p, g, 0, n, lr, wd, 0, 0, false, PLAIN, false);
}

/**
 * SGD with a momentum buffer `buf`; `gradScale` is 1 − dampening (computed by the caller in
 * float64, as torch does), `first` marks the first step (the buffer is then written, not read).
 */
export function sgd_momentum_f32(
  p: usize,
  g: usize,
  buf: usize,
  n: i32,
  lr: f32,
  wd: f32,
  momentum: f32,
  gradScale: f32,
  nesterov: bool,
  first: bool,
): void {
  sgdMomentum<f32>(p, g, buf, n, lr, wd, momentum, gradScale, nesterov, first);
}

export function sgd_momentum_f64(
  p: usize,
  g: usize,
  buf: usize,
  n: i32,
  lr: f64,
  wd: f64,
  momentum: f64,
  gradScale: f64,
  nesterov: bool,
  first: bool,
): void {
  sgdMomentum<f64>(p, g, buf, n, lr, wd, momentum, gradScale, nesterov, first);
}
