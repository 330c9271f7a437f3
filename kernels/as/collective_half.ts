// Collective reductions over f16 and bf16 buffers: every element is widened to f32, combined
// across ranks in rank order (0, 1, …, N−1) in f32, and rounded back once, to nearest even.
// Same arguments and in-place rules as collective_reduce.ts; `scratch` holds BLOCK f32 values.
// NaN rounds to a quiet NaN with its sign kept (f16: 0x7e00, bf16: the top bits | 0x40).
// Reference: test/comm-shm.test.ts emulates the f32 arithmetic (Math.fround in rank order) and
// rounds with numberToF16 / numberToBF16 from src/core/tensor.ts.
import { BLOCK, OP_AVG, OP_MAX, OP_MIN, OP_SUM } from "./collective_common";

const F16: i32 = 0;
const BF16: i32 = 1;

// f16 → f32 on four lanes holding 16-bit patterns: normal and subnormal halves are exact after
// shifting into f32 position and scaling by 2^112; inf and NaN get the f32 exponent 255.
// @ts-ignore: decorator
@inline
function f16Widen4(h: v128): v128 {
  const mag = v128.and(h, i32x4.splat(0x7fff));
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const shifted = i32x4.shl(mag, 13);
  const finite = f32x4.mul(shifted, i32x4.splat(0x77800000)); // · 2^112
  const special = v128.or(shifted, i32x4.splat(0x7f800000));
  return v128.or(sign, v128.bitselect(special, finite, i32x4.gt_s(mag, i32x4.splat(0x7bff))));
}

// @ts-ignore: decorator
@inline
function f16Widen1(h: u32): f32 {
  const mag = h & 0x7fff;
  const sign = (h & 0x8000) << 16;
  const shifted = mag << 13;
  if (mag > 0x7bff) return reinterpret<f32>(sign | shifted | 0x7f800000);
  return reinterpret<f32>(sign | reinterpret<u32>(reinterpret<f32>(shifted) * reinterpret<f32>(0x77800000)));
}

// f32 → f16, round to nearest even, on four lanes (result in the low 16 bits). Adding a power of
// two chosen from the input's exponent makes the f32 adder round away exactly the bits a half
// cannot hold; |x|·2^112·2^-110 overflows to inf exactly where the half does (≥ 65520).
// @ts-ignore: decorator
@inline
function f16Round4(v: v128): v128 {
  const twice = i32x4.add(v, v);
  const sign = i32x4.shr_u(v128.and(v, i32x4.splat(0x80000000)), 16);
  let base = f32x4.mul(f32x4.mul(f32x4.abs(v), i32x4.splat(0x77800000)), i32x4.splat(0x08800000));
  const bias = i32x4.max_u(v128.and(twice, i32x4.splat(0xff000000)), i32x4.splat(0x71000000));
  base = f32x4.add(i32x4.add(i32x4.shr_u(bias, 1), i32x4.splat(0x07800000)), base);
  const bits = i32x4.add(v128.and(i32x4.shr_u(base, 13), i32x4.splat(0x7c00)), v128.and(base, i32x4.splat(0x0fff)));
  const nan = i32x4.gt_u(twice, i32x4.splat(0xff000000));
  return v128.or(sign, v128.bitselect(i32x4.splat(0x7e00), bits, nan));
}

// @ts-ignore: decorator
@inline
function f16Round1(x: f32): u32 {
  const w = reinterpret<u32>(x);
  const twice = w + w;
  const sign = (w & 0x80000000) >> 16;
  if (twice > 0xff000000) return sign | 0x7e00;
  let base = abs<f32>(x) * reinterpret<f32>(0x77800000) * reinterpret<f32>(0x08800000);
  const bias = max<u32>(twice & 0xff000000, 0x71000000);
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const b = reinterpret<u32>(base);
  return sign | (((b >> 13) & 0x7c00) + (b & 0x0fff));
}

// f32 → bf16, round to nearest even on four lanes; NaN keeps its top bits and is made quiet.
// @ts-ignore: decorator
@inline
function bf16Round4(v: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(v, 16), i32x4.splat(1));
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(v, i32x4.splat(0x7fff)), lsb), 16);
  const quiet = v128.or(i32x4.shr_u(v, 16), i32x4.splat(0x40));
  return v128.bitselect(quiet, rounded, f32x4.ne(v, v));
}

// @ts-ignore: decorator
@inline
function bf16Round1(x: f32): u32 {
  const w = reinterpret<u32>(x);
  if (x != x) return (w >> 16) | 0x40;
  return (w + 0x7fff + ((w >> 16) & 1)) >> 16;
}

// @ts-ignore: decorator
@inline
function widenLo(kind: i32, v: v128): v128 {
  const h = i32x4.extend_low_i16x8_u(v);
  return kind == BF16 ? i32x4.shl(h, 16) : f16Widen4(h);
}

// @ts-ignore: decorator
@inline
function widenHi(kind: i32, v: v128): v128 {
  const h = i32x4.extend_high_i16x8_u(v);
  return kind == BF16 ? i32x4.shl(h, 16) : f16Widen4(h);
}

// @ts-ignore: decorator
@inline
function narrow8(kind: i32, lo: v128, hi: v128): v128 {
  if (kind == BF16) return i16x8.narrow_i32x4_u(bf16Round4(lo), bf16Round4(hi));
  return i16x8.narrow_i32x4_u(f16Round4(lo), f16Round4(hi));
}

// @ts-ignore: decorator
@inline
function widen1(kind: i32, h: u32): f32 {
  return kind == BF16 ? reinterpret<f32>(h << 16) : f16Widen1(h);
}

// @ts-ignore: decorator
@inline
function narrow1(kind: i32, x: f32): u16 {
  return <u16>(kind == BF16 ? bf16Round1(x) : f16Round1(x));
}

// @ts-ignore: decorator
@inline
function combineV(op: i32, a: v128, b: v128): v128 {
  if (op == OP_MIN) return f32x4.min(a, b);
  if (op == OP_MAX) return f32x4.max(a, b);
  return f32x4.add(a, b);
}

// @ts-ignore: decorator
@inline
function combineS(op: i32, a: f32, b: f32): f32 {
  if (op == OP_MIN) return min<f32>(a, b);
  if (op == OP_MAX) return max<f32>(a, b);
  return a + b;
}

// out[i] = a[i] ⊕ b[i] for i < m. `a` holds halves when `aHalf`, else f32 (the scratch); `b` holds
// halves; the last pass divides an average and rounds into halves (into out2 too when `dual`),
// earlier ones store f32. kind, op, aHalf, last and dual are constants at every call site.
// @ts-ignore: decorator
@inline
function pass(
  kind: i32,
  op: i32,
  a: usize,
  aHalf: bool,
  b: usize,
  out: usize,
  out2: usize,
  m: i32,
  last: bool,
  dual: bool,
  div: f32,
): void {
  const vdiv = f32x4.splat(div);
  let i = 0;
  for (; i + 8 <= m; i += 8) {
    let alo: v128;
    let ahi: v128;
    if (aHalf) {
      const va = v128.load(a + (<usize>i << 1));
      alo = widenLo(kind, va);
      ahi = widenHi(kind, va);
    } else {
      alo = v128.load(a + (<usize>i << 2));
      ahi = v128.load(a + (<usize>i << 2), 16);
    }
    const vb = v128.load(b + (<usize>i << 1));
    let lo = combineV(op, alo, widenLo(kind, vb));
    let hi = combineV(op, ahi, widenHi(kind, vb));
    if (last) {
      if (op == OP_AVG) {
        lo = f32x4.div(lo, vdiv);
        hi = f32x4.div(hi, vdiv);
      }
      const h = narrow8(kind, lo, hi);
      v128.store(out + (<usize>i << 1), h);
      if (dual) v128.store(out2 + (<usize>i << 1), h);
    } else {
      v128.store(out + (<usize>i << 2), lo);
      v128.store(out + (<usize>i << 2), hi, 16);
    }
  }
  for (; i < m; i++) {
    const x = aHalf ? widen1(kind, load<u16>(a + (<usize>i << 1))) : load<f32>(a + (<usize>i << 2));
    let v = combineS(op, x, widen1(kind, load<u16>(b + (<usize>i << 1))));
    if (last) {
      if (op == OP_AVG) v = v / div;
      const h = narrow1(kind, v);
      store<u16>(out + (<usize>i << 1), h);
      if (dual) store<u16>(out2 + (<usize>i << 1), h);
    } else {
      store<f32>(out + (<usize>i << 2), v);
    }
  }
}

// @ts-ignore: decorator
@inline
function at(table: usize, i: i32): usize {
  return <usize>load<u32>(table + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function reduce(
  kind: i32,
  op: i32,
  srcs: usize,
  nsrc: i32,
  srcOff: usize,
  dsts: usize,
  ndst: i32,
  dstOff: usize,
  n: i32,
  scratch: usize,
): void {
  const div = <f32>nsrc;
  const out0 = at(dsts, 0) + dstOff;
  const out1 = ndst > 1 ? at(dsts, 1) + dstOff : 0;
  for (let b = 0; b < n; b += BLOCK) {
    const m = min(BLOCK, n - b);
    const so = srcOff + (<usize>b << 1);
    const out = out0 + (<usize>b << 1);
    const out2 = out1 + (<usize>b << 1);
    const s0 = at(srcs, 0) + so;
    const last = at(srcs, nsrc - 1) + so;
    if (nsrc == 1) {
      memory.copy(out, s0, <usize>m << 1);
      if (ndst > 1) memory.copy(out2, out, <usize>m << 1);
    } else if (nsrc == 2) {
      if (ndst > 1) pass(kind, op, s0, true, last, out, out2, m, true, true, div);
      else pass(kind, op, s0, true, last, out, 0, m, true, false, div);
    } else {
      pass(kind, op, s0, true, at(srcs, 1) + so, scratch, 0, m, false, false, div);
      for (let s = 2; s < nsrc - 1; s++) pass(kind, op, scratch, false, at(srcs, s) + so, scratch, 0, m, false, false, div);
      if (ndst > 1) pass(kind, op, scratch, false, last, out, out2, m, true, true, div);
      else pass(kind, op, scratch, false, last, out, 0, m, true, false, div);
    }
    // destinations past the first two get a copy of each finished block (still in L1)
    for (let d = 2; d < ndst; d++) memory.copy(at(dsts, d) + dstOff + (<usize>b << 1), out, <usize>m << 1);
  }
}

// One export per dtype and operator, so that each loop body holds one combine (see
// collective_reduce.ts).

export function coll_sum_f16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(F16, OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_avg_f16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(F16, OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_min_f16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(F16, OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_max_f16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(F16, OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_sum_bf16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(BF16, OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_avg_bf16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(BF16, OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_min_bf16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(BF16, OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_max_bf16(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce(BF16, OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
