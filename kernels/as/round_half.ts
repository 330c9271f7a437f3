// f32 → f32 rounded through a half dtype: dst[i] = widen(narrow(src[i])) in one pass, the bits
// f32_to_f16 then f16_to_f32 (or f32_to_bf16 then bf16_to_f32) give, without the half copy in
// between. What a half product run on an f32-only GEMM (the system BLAS) multiplies.
// Reference: the two casts in sequence, bit for bit, in test/round-half.test.ts.
// src and dst must not overlap (a block holding a NaN is read again after it was written).
//
// f16: the FPU rounds. For |x| in [2^e, 2^(e+1)), bias = 2^(e+13) (2^-1 below 2^-14, where
// the half's subnormals share one ulp) has the half's ulp as its own, so |x| + bias rounds |x|
// to the half's precision, to nearest even, and (|x| + bias) − bias is exact (Sterbenz). |x|
// below f32's smallest normal is raised to it first (it rounds to 0 all the same): no float op
// sees a subnormal, which would stall x86. The fast loop is right for |x| < 65520; a block
// holding a larger |x|, an inf or a NaN is redone by the exact loop (past 65519.99… a half is
// ±inf; a NaN becomes the widened quiet half NaN, sign | 0x7fc00000 | top ten payload bits).
// bf16: round to nearest even on the upper 16 bits, the low 16 cleared; a NaN keeps its sign and
// top payload with the quiet bit set.

// Elements per NaN check; a block holding a NaN is redone by the exact loop while still in L1.
const BLOCK = 1024;

const K = memory.data<u32>(
  [
    0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // 0: magnitude mask
    0x00800000, 0x00800000, 0x00800000, 0x00800000, // 16: f32's smallest normal
    0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 32: exponent mask; also +inf
    0x38800000, 0x38800000, 0x38800000, 0x38800000, // 48: 2⁻¹⁴, the smallest normal half
    0x06800000, 0x06800000, 0x06800000, 0x06800000, // 64: 13 << 23, ×2¹³ through the exponent
    0x477fefff, 0x477fefff, 0x477fefff, 0x477fefff, // 80: below 65520, where halves end (redo above)
    0x80000000, 0x80000000, 0x80000000, 0x80000000, // 96: sign
    0xffffe000, 0xffffe000, 0xffffe000, 0xffffe000, // 112: the bits a half keeps
    0x00400000, 0x00400000, 0x00400000, 0x00400000, // 128: quiet-NaN bit
    0x00007fff, 0x00007fff, 0x00007fff, 0x00007fff, // 144: bf16 rounding bias
    0x00000001, 0x00000001, 0x00000001, 0x00000001, // 160: lowest kept bf16 bit
    0xffff0000, 0xffff0000, 0xffff0000, 0xffff0000, // 176: the bits a bf16 keeps
    0, 0, 0, 0, // 192: zero
  ],
  16,
);

// Scalar form of the f16 rounding (every input), for tails.
@inline
function f16_round_bits(u: u32): u32 {
  const sign = u & 0x80000000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return (u | 0x00400000) & 0xffffe000;
  if (a > 0x477fefff) return sign | 0x7f800000;
  const m = max(a, 0x00800000);
  const bias = reinterpret<f32>(max(m & 0x7f800000, 0x38800000) + 0x06800000);
  return sign | reinterpret<u32>(reinterpret<f32>(m) + bias - bias);
}

// x rounded to f16 and widened, given a = |x| bits; right for a ≤ 0x477fefff. The constants
// K16..K64 and K96 come as arguments: the loop loads them into locals once (V8 keeps a
// v128.load in the loop, ~10% of this pass's time at the 784×256 weight).
@inline
function f16_round(x: v128, a: v128, k16: v128, k32: v128, k48: v128, k64: v128, k96: v128): v128 {
  const m = i32x4.max_s(a, k16);
  const bias = i32x4.add(i32x4.max_s(v128.and(m, k32), k48), k64);
  return v128.or(f32x4.sub(f32x4.add(m, bias), bias), v128.and(x, k96));
}

// f16_round for every input: ±inf past 65519.99…, NaN lanes the widened quiet half NaN.
@inline
function f16_round_exact(x: v128): v128 {
  const a = v128.and(x, v128.load(K));
  const near = f16_round(x, a, v128.load(K, 16), v128.load(K, 32), v128.load(K, 48), v128.load(K, 64), v128.load(K, 96));
  const big = v128.bitselect(v128.or(v128.and(x, v128.load(K, 96)), v128.load(K, 32)), near, i32x4.gt_s(a, v128.load(K, 80)));
  const nan = i32x4.gt_s(a, v128.load(K, 32));
  return v128.bitselect(v128.and(v128.or(x, v128.load(K, 128)), v128.load(K, 112)), big, nan);
}

export function f32_round_f16(src: usize, dst: usize, n: i32): void {
  const body = n & ~7;
  const k0 = v128.load(K);
  const k16 = v128.load(K, 16);
  const k32 = v128.load(K, 32);
  const k48 = v128.load(K, 48);
  const k64 = v128.load(K, 64);
  const k80 = v128.load(K, 80);
  const k96 = v128.load(K, 96);
  let i = 0;
  while (i < body) {
    const end = min(i + BLOCK, body);
    let top = v128.load(K, 192); // largest |x| bits seen
    for (let j = i; j < end; j += 8) {
      const p = src + (<usize>j << 2);
      const q = dst + (<usize>j << 2);
      const x = v128.load(p);
      const y = v128.load(p, 16);
      const ax = v128.and(x, k0);
      const ay = v128.and(y, k0);
      top = i32x4.max_s(top, i32x4.max_s(ax, ay));
      v128.store(q, f16_round(x, ax, k16, k32, k48, k64, k96));
      v128.store(q, f16_round(y, ay, k16, k32, k48, k64, k96), 16);
    }
    if (v128.any_true(i32x4.gt_s(top, k80))) {
      for (let j = i; j < end; j += 8) {
        const p = src + (<usize>j << 2);
        const q = dst + (<usize>j << 2);
        v128.store(q, f16_round_exact(v128.load(p)));
        v128.store(q, f16_round_exact(v128.load(p, 16)), 16);
      }
    }
    i = end;
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), f16_round_bits(load<u32>(src + (<usize>i << 2))));
}

// Scalar form of the bf16 rounding, for tails.
@inline
function bf16_round_bits(u: u32): u32 {
  if ((u & 0x7fffffff) > 0x7f800000) return (u | 0x00400000) & 0xffff0000;
  return (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
}

@inline
function bf16_round(x: v128): v128 {
  const r = i32x4.add(i32x4.add(x, v128.load(K, 144)), v128.and(i32x4.shr_u(x, 16), v128.load(K, 160)));
  return v128.and(r, v128.load(K, 176));
}

@inline
function bf16_round_exact(x: v128): v128 {
  return v128.bitselect(v128.and(v128.or(x, v128.load(K, 128)), v128.load(K, 176)), bf16_round(x), f32x4.ne(x, x));
}

export function f32_round_bf16(src: usize, dst: usize, n: i32): void {
  const body = n & ~7;
  let i = 0;
  while (i < body) {
    const end = min(i + BLOCK, body);
    let nan = v128.load(K, 192);
    for (let j = i; j < end; j += 8) {
      const p = src + (<usize>j << 2);
      const q = dst + (<usize>j << 2);
      const x = v128.load(p);
      const y = v128.load(p, 16);
      // x + y is NaN when x or y holds one (or for inf − inf, which only costs a redo)
      const s = f32x4.add(x, y);
      nan = v128.or(nan, f32x4.ne(s, s));
      v128.store(q, bf16_round(x));
      v128.store(q, bf16_round(y), 16);
    }
    if (v128.any_true(nan)) {
      for (let j = i; j < end; j += 8) {
        const p = src + (<usize>j << 2);
        const q = dst + (<usize>j << 2);
        v128.store(q, bf16_round_exact(v128.load(p)));
        v128.store(q, bf16_round_exact(v128.load(p, 16)), 16);
      }
    }
    i = end;
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), bf16_round_bits(load<u32>(src + (<usize>i << 2))));
}
