// f32 ↔ bf16 casts over raw bit patterns. Reference: test/vectors/f32_to_16.bin (the integer
// round-to-nearest-even formula of scripts/gen-cast-vectors.py, checked there against an exact
// float64 comparison) and the exhaustive bf16 → f32 → bf16 round trip in test/cast.test.ts.
//
// f32 → bf16 rounds to nearest even, keeps ±inf and ±0, and turns a NaN into the quiet NaN with
// its sign and top payload bits, `(u >>> 16) | 0x0040` (what AVX512-BF16 does). bf16 → f32 is
// exact: `u16 << 16`, signalling NaNs included.
//
// Constants are loaded from static data inside the loops: V8 rebuilds a v128.const with three
// ALU instructions on every iteration, while a load takes a load port (PERFORMANCE.md §3.2).

// Elements per NaN check. A block that holds a NaN is converted again by the exact loop while it
// is still in L1, so NaN-free data pays only for the check.
const BLOCK = 1024;

const K = memory.data<u32>(
  [
    0x7fff, 0x7fff, 0x7fff, 0x7fff, // 0: rounding bias below the kept half
    1, 1, 1, 1, // 16: lowest kept bit, for ties to even
    0x00400000, 0x00400000, 0x00400000, 0x00400000, // 32: f32 quiet-NaN bit
  ],
  16,
);

// Scalar form of the same rounding, for tails.
@inline
function bf16_bits(u: u32): u32 {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

// `x + bias + lsb`: the rounded bf16 sits in the upper half of each lane (NaNs not handled).
@inline
function round_hi(x: v128): v128 {
  return i32x4.add(i32x4.add(x, v128.load(K)), v128.and(i32x4.shr_u(x, 16), v128.load(K, 16)));
}

// round_hi with NaN lanes replaced by the quiet NaN of the same sign and top payload.
@inline
function round_hi_exact(x: v128): v128 {
  return v128.bitselect(v128.or(x, v128.load(K, 32)), round_hi(x), f32x4.ne(x, x));
}

// Packs the upper halves of two f32x4 into one u16x8.
@inline
function pack_hi(a: v128, b: v128): v128 {
  return i16x8.narrow_i32x4_u(i32x4.shr_u(a, 16), i32x4.shr_u(b, 16));
}

export function f32_to_bf16(src: usize, dst: usize, n: i32): void {
  const body = n & ~7;
  let i = 0;
  while (i < body) {
    const end = min(i + BLOCK, body);
    let nan = i32x4.splat(0);
    for (let j = i; j < end; j += 8) {
      const a = v128.load(src + (<usize>j << 2));
      const b = v128.load(src + (<usize>j << 2), 16);
      // a + b is NaN when a or b holds one (or for inf − inf, which only costs a redo)
      const s = f32x4.add(a, b);
      nan = v128.or(nan, f32x4.ne(s, s));
      v128.store(dst + (<usize>j << 1), pack_hi(round_hi(a), round_hi(b)));
    }
    if (v128.any_true(nan)) {
      for (let j = i; j < end; j += 8) {
        const a = v128.load(src + (<usize>j << 2));
        const b = v128.load(src + (<usize>j << 2), 16);
        v128.store(dst + (<usize>j << 1), pack_hi(round_hi_exact(a), round_hi_exact(b)));
      }
    }
    i = end;
  }
  for (; i < n; i++) store<u16>(dst + (<usize>i << 1), bf16_bits(load<u32>(src + (<usize>i << 2))));
}

export function bf16_to_f32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    const zero = i32x4.splat(0);
    const p = dst + (<usize>i << 2);
    // interleave zeros below each half: u16 << 16 in one unpack per four lanes
    v128.store(p, i8x16.shuffle(zero, h, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
    v128.store(p, i8x16.shuffle(zero, h, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}
