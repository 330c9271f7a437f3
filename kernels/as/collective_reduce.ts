// Collective reductions over f32, f64 and i32 buffers (f16/bf16: collective_half.ts).
//
// coll_reduce_T(srcs, nsrc, srcOff, dsts, ndst, dstOff, n, op, scratch) combines elements
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

// out[i] = a[i] ⊕ b[i] for i < m; divided by `div` when this is the last pass of an average.
// `op` and `last` are constants at every call site, so each inlined copy keeps one loop body.
// @ts-ignore: decorator
@inline
function pass<T>(op: i32, a: usize, b: usize, out: usize, m: i32, last: bool, div: T): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const vdiv = v128.splat<T>(div);
  let i = 0;
  for (; i + lanes <= m; i += lanes) {
    const o = <usize>i << shift;
    let v = combineV<T>(op, v128.load(a + o), v128.load(b + o));
    if (isFloat<T>()) {
      if (last && op == OP_AVG) v = v128.div<T>(v, vdiv);
    }
    v128.store(out + o, v);
  }
  for (; i < m; i++) {
    const o = <usize>i << shift;
    let v = combineS<T>(op, load<T>(a + o), load<T>(b + o));
    if (isFloat<T>()) {
      if (last && op == OP_AVG) v = v / div;
    }
    store<T>(out + o, v);
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
  for (let b = 0; b < n; b += BLOCK) {
    const m = min(BLOCK, n - b);
    const so = srcOff + (<usize>b << shift);
    const out = out0 + (<usize>b << shift);
    if (nsrc == 1) {
      memory.copy(out, at(srcs, 0) + so, <usize>m << shift);
    } else if (nsrc == 2) {
      pass<T>(op, at(srcs, 0) + so, at(srcs, 1) + so, out, m, true, div);
    } else {
      pass<T>(op, at(srcs, 0) + so, at(srcs, 1) + so, scratch, m, false, div);
      for (let s = 2; s < nsrc - 1; s++) pass<T>(op, scratch, at(srcs, s) + so, scratch, m, false, div);
      pass<T>(op, scratch, at(srcs, nsrc - 1) + so, out, m, true, div);
    }
    for (let d = 1; d < ndst; d++) memory.copy(at(dsts, d) + dstOff + (<usize>b << shift), out, <usize>m << shift);
  }
}

export function coll_reduce_f32(
  srcs: usize,
  nsrc: i32,
  srcOff: usize,
  dsts: usize,
  ndst: i32,
  dstOff: usize,
  n: i32,
  op: i32,
  scratch: usize,
): void {
  if (op == OP_MIN) reduce<f32>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else if (op == OP_MAX) reduce<f32>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else if (op == OP_AVG) reduce<f32>(OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else reduce<f32>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}

export function coll_reduce_f64(
  srcs: usize,
  nsrc: i32,
  srcOff: usize,
  dsts: usize,
  ndst: i32,
  dstOff: usize,
  n: i32,
  op: i32,
  scratch: usize,
): void {
  if (op == OP_MIN) reduce<f64>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else if (op == OP_MAX) reduce<f64>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else if (op == OP_AVG) reduce<f64>(OP_AVG, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else reduce<f64>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}

/** Integer sum wraps (two's complement); src/comm refuses "avg" on i32 before it gets here. */
export function coll_reduce_i32(
  srcs: usize,
  nsrc: i32,
  srcOff: usize,
  dsts: usize,
  ndst: i32,
  dstOff: usize,
  n: i32,
  op: i32,
  scratch: usize,
): void {
  if (op == OP_MIN) reduce<i32>(OP_MIN, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else if (op == OP_MAX) reduce<i32>(OP_MAX, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
  else reduce<i32>(OP_SUM, srcs, nsrc, srcOff, dsts, ndst, dstOff, n, scratch);
}
