// Reductions over f32 (and f64 for sum and sum of squares). Each kernel writes one f64 to
// `out`, so that the TypeScript side can run one kernel per pool thread on disjoint ranges and
// combine the partials itself, in a fixed order. Reference: float64 loops in test/reduce.test.ts.
//
// Summation error. sum_f32 adds blocks of elements in f32x4 accumulators, at most 16 elements
// per lane, folds the accumulators pairwise and carries each block's 4 lanes into f64 (see
// sumF32). An element passes through at most 15 + 2 f32 roundings and then f64 adds, so
//   |sum − Σx| ≤ 17·2⁻²⁴·Σ|x| + (n/128 + 3)·2⁻⁵³·Σ|x|  (first order; < 17.1·2⁻²⁴·Σ|x| for n < 2³⁰),
// independent of n, unlike a running f32 sum (n·2⁻²⁴) or pairwise summation (log₂n·2⁻²⁴).
// sum_squares_f32 rounds once more per element (the square): < 18.1·2⁻²⁴·Σx². The f64 versions
// use blocks of 128 in 4 f64x2 accumulators (18 roundings) and a compensated (Neumaier) sum over
// the blocks: ≤ 20·2⁻⁵³·Σ|x| (21·2⁻⁵³·Σx²); the TypeScript side's compensated combination of
// the threads' partials adds 2·2⁻⁵³. A block whose f32 partial overflows gives ±inf, as any f32
// accumulation does.
//
// NaN: sums propagate NaN (and inf − inf = NaN). max_f32 returns NaN if any element is NaN
// (tracked with x ≠ x beside the NaN-ignoring f32x4.pmax). max_abs_f32 takes
// the unsigned integer max of the |x| bit patterns: every NaN pattern is above +inf's, so a NaN
// anywhere gives a NaN (the one with the largest payload). all_finite_f32 is 0 on any NaN or ±inf.
import { madd } from "./math";

// Memory parallelism: one sequential stream of loads leaves this core's memory system half
// idle (measured on 64 MiB here: 8.5 GB/s with one stream, 16–17 with four, against
// memory.copy's 14 r+w). So the f32 reductions read four streams at once, one per quarter of
// the input, two vectors from each per iteration, and finish the short rest as one stream.

// acc + v, or acc + v² (fused in the relaxed build)
// @ts-ignore: decorator
@inline
function addF32(acc: v128, v: v128, squares: bool): v128 {
  return squares ? madd<f32>(v, v, acc) : f32x4.add(acc, v);
}

// lanes 0–1 and 2–3 of an f32x4, widened exactly to f64x2
// @ts-ignore: decorator
@inline
function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
// @ts-ignore: decorator
@inline
function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
}

// Σ x (squares = false) or Σ x² (squares = true) over f32.
// @ts-ignore: decorator
@inline
function sumF32(x: usize, n: i32, out: usize, squares: bool): void {
  // block totals carried in f64 (lanes 0–1 in tlo, 2–3 in thi); no horizontal add per block
  let tlo = f64x2.splat(0);
  let thi = tlo;
  // four streams of q elements (a multiple of 128), in blocks of 128 per stream: 2 accumulators
  // per stream, so 16 elements per lane and one more rounding to fold the pair
  const q = (n >> 9) << 7;
  const qb = <usize>q << 2;
  for (let b = 0; b < q; b += 128) {
    let a0 = f32x4.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    let a4 = a0;
    let a5 = a0;
    let a6 = a0;
    let a7 = a0;
    const end = x + (<usize>(b + 128) << 2);
    for (let p = x + (<usize>b << 2); p < end; p += 32) {
      a0 = addF32(a0, v128.load(p), squares);
      a1 = addF32(a1, v128.load(p, 16), squares);
      a2 = addF32(a2, v128.load(p + qb), squares);
      a3 = addF32(a3, v128.load(p + qb, 16), squares);
      a4 = addF32(a4, v128.load(p + 2 * qb), squares);
      a5 = addF32(a5, v128.load(p + 2 * qb, 16), squares);
      a6 = addF32(a6, v128.load(p + 3 * qb), squares);
      a7 = addF32(a7, v128.load(p + 3 * qb, 16), squares);
    }
    const s0 = f32x4.add(a0, a1);
    const s1 = f32x4.add(a2, a3);
    const s2 = f32x4.add(a4, a5);
    const s3 = f32x4.add(a6, a7);
    tlo = f64x2.add(tlo, f64x2.add(f64x2.add(lo64(s0), lo64(s1)), f64x2.add(lo64(s2), lo64(s3))));
    thi = f64x2.add(thi, f64x2.add(f64x2.add(hi64(s0), hi64(s1)), f64x2.add(hi64(s2), hi64(s3))));
  }
  // the rest, one stream: blocks of 256 elements in 4 accumulators (16 per lane), the last
  // block partial: groups of 4 vectors, then 0–3 single vectors, still ≤ 16 elements per lane
  let i = 4 * q;
  while (i + 4 <= n) {
    const end = min(i + 256, n);
    let a0 = f32x4.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    for (; i + 16 <= end; i += 16) {
      const p = x + (<usize>i << 2);
      a0 = addF32(a0, v128.load(p), squares);
      a1 = addF32(a1, v128.load(p, 16), squares);
      a2 = addF32(a2, v128.load(p, 32), squares);
      a3 = addF32(a3, v128.load(p, 48), squares);
    }
    if (i + 4 <= end) {
      a0 = addF32(a0, v128.load(x + (<usize>i << 2)), squares);
      i += 4;
    }
    if (i + 4 <= end) {
      a1 = addF32(a1, v128.load(x + (<usize>i << 2)), squares);
      i += 4;
    }
    if (i + 4 <= end) {
      a2 = addF32(a2, v128.load(x + (<usize>i << 2)), squares);
      i += 4;
    }
    const s = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
    tlo = f64x2.add(tlo, lo64(s));
    thi = f64x2.add(thi, hi64(s));
  }
  const t = f64x2.add(tlo, thi);
  let total = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    total += squares ? v * v : v;
  }
  store<f64>(out, total);
}

export function sum_f32(x: usize, n: i32, out: usize): void {
  sumF32(x, n, out, false);
}

export function sum_squares_f32(x: usize, n: i32, out: usize): void {
  sumF32(x, n, out, true);
}

// Σ x or Σ x² over f64; block totals go into a Neumaier-compensated sum.
// @ts-ignore: decorator
@inline
function sumF64(x: usize, n: i32, out: usize, squares: bool): void {
  let total: f64 = 0;
  let comp: f64 = 0;
  let i = 0;
  const vecEnd = n & ~1;
  while (i < vecEnd) {
    const end = min(i + 128, vecEnd);
    let a0 = f64x2.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    for (; i + 8 <= end; i += 8) {
      const p = x + (<usize>i << 3);
      const v0 = v128.load(p);
      const v1 = v128.load(p, 16);
      const v2 = v128.load(p, 32);
      const v3 = v128.load(p, 48);
      if (squares) {
        a0 = madd<f64>(v0, v0, a0);
        a1 = madd<f64>(v1, v1, a1);
        a2 = madd<f64>(v2, v2, a2);
        a3 = madd<f64>(v3, v3, a3);
      } else {
        a0 = f64x2.add(a0, v0);
        a1 = f64x2.add(a1, v1);
        a2 = f64x2.add(a2, v2);
        a3 = f64x2.add(a3, v3);
      }
    }
    if (i < end) {
      const v = v128.load(x + (<usize>i << 3));
      a0 = squares ? madd<f64>(v, v, a0) : f64x2.add(a0, v);
      i += 2;
    }
    if (i < end) {
      const v = v128.load(x + (<usize>i << 3));
      a1 = squares ? madd<f64>(v, v, a1) : f64x2.add(a1, v);
      i += 2;
    }
    if (i < end) {
      const v = v128.load(x + (<usize>i << 3));
      a2 = squares ? madd<f64>(v, v, a2) : f64x2.add(a2, v);
      i += 2;
    }
    const s = f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3));
    const b = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    const t = total + b;
    comp += abs(total) >= abs(b) ? total - t + b : b - t + total;
    total = t;
  }
  if (i < n) {
    const v = load<f64>(x + (<usize>i << 3));
    const b = squares ? v * v : v;
    const t = total + b;
    comp += abs(total) >= abs(b) ? total - t + b : b - t + total;
    total = t;
  }
  store<f64>(out, isFinite(total) ? total + comp : total); // inf − inf in comp is no NaN of the data
}

export function sum_f64(x: usize, n: i32, out: usize): void {
  sumF64(x, n, out, false);
}

export function sum_squares_f64(x: usize, n: i32, out: usize): void {
  sumF64(x, n, out, true);
}

/** max x, NaN if any x is NaN; -inf for n = 0. */
export function max_f32(x: usize, n: i32, out: usize): void {
  let a0 = f32x4.splat(-Infinity);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  let nan = i32x4.splat(0);
  // four streams of q elements (a multiple of 8), two vectors from each per iteration
  const q = (n >> 5) << 3;
  const qb = <usize>q << 2;
  const end = x + qb;
  for (let p = x; p < end; p += 32) {
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const v2 = v128.load(p + qb);
    const v3 = v128.load(p + qb, 16);
    const v4 = v128.load(p + 2 * qb);
    const v5 = v128.load(p + 2 * qb, 16);
    const v6 = v128.load(p + 3 * qb);
    const v7 = v128.load(p + 3 * qb, 16);
    a0 = f32x4.pmax(f32x4.pmax(a0, v0), v1);
    a1 = f32x4.pmax(f32x4.pmax(a1, v2), v3);
    a2 = f32x4.pmax(f32x4.pmax(a2, v4), v5);
    a3 = f32x4.pmax(f32x4.pmax(a3, v6), v7);
    const n0 = v128.or(f32x4.ne(v0, v0), f32x4.ne(v1, v1));
    const n1 = v128.or(f32x4.ne(v2, v2), f32x4.ne(v3, v3));
    const n2 = v128.or(f32x4.ne(v4, v4), f32x4.ne(v5, v5));
    const n3 = v128.or(f32x4.ne(v6, v6), f32x4.ne(v7, v7));
    nan = v128.or(nan, v128.or(v128.or(n0, n1), v128.or(n2, n3)));
  }
  let i = 4 * q;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    a0 = f32x4.pmax(a0, v);
    nan = v128.or(nan, f32x4.ne(v, v));
  }
  const a = f32x4.pmax(f32x4.pmax(a0, a1), f32x4.pmax(a2, a3));
  let m = max(max(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
  if (v128.any_true(nan)) m = NaN;
  for (; i < n; i++) m = max(m, load<f32>(x + (<usize>i << 2))); // scalar max propagates NaN
  store<f64>(out, m);
}

// The unsigned max of (bits & mask) over x, four streams as above.
// @ts-ignore: decorator
@inline
function maxBitsU32(x: usize, n: i32, mask: i32): u32 {
  const m = i32x4.splat(mask);
  let a0 = i32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  const q = (n >> 5) << 3;
  const qb = <usize>q << 2;
  const end = x + qb;
  for (let p = x; p < end; p += 32) {
    a0 = i32x4.max_u(a0, v128.and(v128.load(p), m));
    a1 = i32x4.max_u(a1, v128.and(v128.load(p, 16), m));
    a2 = i32x4.max_u(a2, v128.and(v128.load(p + qb), m));
    a3 = i32x4.max_u(a3, v128.and(v128.load(p + qb, 16), m));
    a0 = i32x4.max_u(a0, v128.and(v128.load(p + 2 * qb), m));
    a1 = i32x4.max_u(a1, v128.and(v128.load(p + 2 * qb, 16), m));
    a2 = i32x4.max_u(a2, v128.and(v128.load(p + 3 * qb), m));
    a3 = i32x4.max_u(a3, v128.and(v128.load(p + 3 * qb, 16), m));
  }
  let i = 4 * q;
  for (; i + 4 <= n; i += 4) a0 = i32x4.max_u(a0, v128.and(v128.load(x + (<usize>i << 2)), m));
  const a = i32x4.max_u(i32x4.max_u(a0, a1), i32x4.max_u(a2, a3));
  let r = max(max(<u32>i32x4.extract_lane(a, 0), <u32>i32x4.extract_lane(a, 1)), max(<u32>i32x4.extract_lane(a, 2), <u32>i32x4.extract_lane(a, 3)));
  for (; i < n; i++) r = max(r, load<u32>(x + (<usize>i << 2)) & mask);
  return r;
}

/** max |x| as the unsigned max of the bit patterns with the sign cleared; 0 for n = 0. */
export function max_abs_f32(x: usize, n: i32, out: usize): void {
  store<f64>(out, <f64>reinterpret<f32>(maxBitsU32(x, n, 0x7fffffff)));
}

/** 1 if every x is finite, else 0: the exponent field is all ones only for ±inf and NaN. */
export function all_finite_f32(x: usize, n: i32, out: usize): void {
  store<f64>(out, maxBitsU32(x, n, 0x7f800000) == 0x7f800000 ? 0 : 1);
}
