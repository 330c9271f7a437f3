// Collective reductions over f32, f64 and i32 buffers (f16/bf16: collective_half.ts).
//
// coll_<op>_<T>(srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch) combines elements
// [0, n) that start `srcOff` bytes into each of the `nsrc` source buffers and stores the result
// `dstOff` bytes into each of the `ndst` destination buffers. `srcs` and `dsts` are addresses of
// u32 tables holding the buffers' base addresses. Every element is combined in table order
// (rank 0, 1, …, N−1): ((x0 ⊕ x1) ⊕ x2) ⊕ …, whichever rank runs the kernel, so all ranks get
// the same bits. A destination may be one of the sources (in-place allreduce): each block is
// read from every source before it is written. `scratch` holds BLOCK elements (nsrc > 2).
// Reference: the rank-ordered float32/float64 loops in test/comm-shm.test.ts.
import { BLOCK, OP_AVG, OP_MAX, OP_MIN, OP_SUM } from "./collective_common";

// @ts-ignore: decorator
@inline
function combineV<T>(op: i32, a: v128, b: v128): v128 {
  if (op == OP_MIN) return v128.min<T>(a, b);
  if (op == OP_MAX) return v128.max<T>(a, b);
  return v128.add<T>(a, b);
}

// @ts-ignore: decorator
@inline
function combineS<T>(op: i32, a: T, b: T): T {
  if (op == OP_MIN) return min<T>(a, b);
  if (op == OP_MAX) return max<T>(a, b);
  return a + b;
}

// One vector of a pass at byte offset o (see pass).
// @ts-ignore: decorator
@inline
function step<T>(op: i32, a: usize, b: usize, out: usize, out2: usize, o: usize, last: bool, dual: bool, vdiv: v128): void {
  let v = combineV<T>(op, v128.load(a + o), v128.load(b + o));
  if (isFloat<T>()) {
    if (last && op == OP_AVG) v = v128.div<T>(v, vdiv);
  }
  v128.store(out + o, v);
  if (dual) v128.store(out2 + o, v);
}

// out[i] = a[i] ⊕ b[i] for i < m (and out2[i] too when `dual`: the second destination of a
// two-rank in-place allreduce is written in the same loop); divided by `div` when this is the last
// pass of an average. `op`, `last` and `dual` are constants at every call site. The vector loop
// does four vectors per turn (V8 does not unroll), then single vectors, then a scalar tail.
// @ts-ignore: decorator
@inline
function pass<T>(op: i32, a: usize, b: usize, out: usize, out2: usize, m: i32, last: bool, dual: bool, div: T): void {
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const vdiv = v128.splat<T>(div);
  const bytes = <usize>m << shift;
  let o: usize = 0;
  for (; o + 64 <= bytes; o += 64) {
    step<T>(op, a, b, out, out2, o, last, dual, vdiv);
    step<T>(op, a, b, out, out2, o + 16, last, dual, vdiv);
    step<T>(op, a, b, out, out2, o + 32, last, dual, vdiv);
    step<T>(op, a, b, out, out2, o + 48, last, dual, vdiv);
  }
  for (; o + 16 <= bytes; o += 16) step<T>(op, a, b, out, out2, o, last, dual, vdiv);
  for (; o < bytes; o += sizeof<T>()) {
    let v = combineS<T>(op, load<T>(a + o), load<T>(b + o));
    if (isFloat<T>()) {
      if (last && op == OP_AVG) v = v / div;
    }
    store<T>(out + o, v);
    if (dual) store<T>(out2 + o, v);
  }
}

// @ts-ignore: decorator
@inline
function at(table: usize, i: i32): usize {
  return <usize>load<u32>(table + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function reduce<T>(
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
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const div = <T>nsrc;
  const out0 = at(dsts, 0) + dstOff;
  const out1 = ndst > 1 ? at(dsts, 1) + dstOff : 0;
  for (let b = 0; b < n; b += BLOCK) {
    const m = min(BLOCK, n - b);
    const so = srcOff + (<usize>b << shift);
    const out = out0 + (<usize>b << shift);
    const out2 = out1 + (<usize>b << shift);
    if (nsrc == 1) {
      memory.copy(out, at(srcs, 0) + so, <usize>m << shift);
      if (ndst > 1) memory.copy(out2, out, <usize>m << shift);
    } else {
      let a = at(srcs, 0) + so;
      if (nsrc > 2) {
        pass<T>(op, a, at(srcs, 1) + so, scratch, 0, m, false, false, div);
        for (let s = 2; s < nsrc - 1; s++) pass<T>(op, scratch, at(srcs, s) + so, scratch, 0, m, false, false, div);
        a = scratch;
      }
      const last = at(srcs, nsrc - 1) + so;
      if (ndst > 1) pass<T>(op, a, last, out, out2, m, true, true, div);
      else pass<T>(op, a, last, out, 0, m, true, false, div);
    }
    // destinations past the first two get a copy of each finished block (still in L1)
    for (let d = 2; d < ndst; d++) memory.copy(at(dsts, d) + dstOff + (<usize>b << shift), out, <usize>m << shift);
  }
}

// One export per dtype and operator: with the operator a compile-time constant in each, every
// loop body holds exactly one combine (binaryen folds a runtime switch over otherwise identical
// inlined copies into a per-vector branch, which halves the speed).

export function coll_sum_f32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f32>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_avg_f32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f32>(OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_min_f32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f32>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_max_f32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f32>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_sum_f64(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f64>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_avg_f64(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f64>(OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_min_f64(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f64>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_max_f64(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<f64>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
/** Integer sum wraps (two's complement); src/comm refuses "avg" on i32 before it gets here. */
export function coll_sum_i32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<i32>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_min_i32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<i32>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
export function coll_max_i32(srcs: usize, nsrc: i32, srcOff: usize, dsts: usize, ndst: i32, dstOff: usize, n: i32, scratch: usize): void {
  reduce<i32>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
