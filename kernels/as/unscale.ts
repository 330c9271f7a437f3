// The AMP unscale step: dst[i] = src[i] · inv (inv = f32(1 / f64(scale)), computed by the
// caller), returning 1 when every input was finite and 0 otherwise. The same flag is stored at
// `finite_out` (an i32), because pool threads cannot return values. src may equal dst for f32.
// Variants read f16 or bf16 gradients and write f32 (widen + unscale + check in one pass).
// Reference: Math.fround(x · inv) and a float64 finiteness check in test/cast.test.ts.
//
// Finiteness uses integer ops: the largest exponent field seen (unsigned max) reaches all ones
// only if some input was ±inf or NaN; f32x4 compares are slower on x86 (PERFORMANCE.md §3.2).
import { f16_to_f32_bits, f16x8_nonfinite, store_f16x8_as_f32 } from "./cast_f16_lanes";

const K = memory.data<u32>([0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000], 16);
const BF16_EXP = memory.data<u16>([0x7f80, 0x7f80, 0x7f80, 0x7f80, 0x7f80, 0x7f80, 0x7f80, 0x7f80], 16);

@inline
function finish(ok: bool, finite_out: usize): i32 {
  store<i32>(finite_out, <i32>ok);
  return <i32>ok;
}

export function unscale_f32(src: usize, dst: usize, n: i32, inv: f32, finite_out: usize): i32 {
  const scale = f32x4.splat(inv);
  let top = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = src + (<usize>i << 2);
    const q = dst + (<usize>i << 2);
    const x = v128.load(p);
    const y = v128.load(p, 16);
    top = i32x4.max_u(top, i32x4.max_u(v128.and(x, v128.load(K)), v128.and(y, v128.load(K))));
    v128.store(q, f32x4.mul(x, scale));
    v128.store(q, f32x4.mul(y, scale), 16);
  }
  let ok = !v128.any_true(i32x4.eq(top, v128.load(K)));
  for (; i < n; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    ok = ok && (reinterpret<u32>(x) & 0x7f800000) != 0x7f800000;
    store<f32>(dst + (<usize>i << 2), x * inv);
  }
  return finish(ok, finite_out);
}

export function unscale_bf16_f32(src: usize, dst: usize, n: i32, inv: f32, finite_out: usize): i32 {
  const scale = f32x4.splat(inv);
  let top = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    top = i16x8.max_u(top, v128.and(h, v128.load(BF16_EXP)));
    const zero = i32x4.splat(0);
    const q = dst + (<usize>i << 2);
    v128.store(q, f32x4.mul(i8x16.shuffle(zero, h, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), scale));
    v128.store(
      q,
      f32x4.mul(i8x16.shuffle(zero, h, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), scale),
      16,
    );
  }
  let ok = !v128.any_true(i16x8.eq(top, v128.load(BF16_EXP)));
  for (; i < n; i++) {
    const h = <u32>load<u16>(src + (<usize>i << 1));
    ok = ok && (h & 0x7f80) != 0x7f80;
    store<f32>(dst + (<usize>i << 2), reinterpret<f32>(h << 16) * inv);
  }
  return finish(ok, finite_out);
}

export function unscale_f16_f32(src: usize, dst: usize, n: i32, inv: f32, finite_out: usize): i32 {
  const scale = f32x4.splat(inv);
  let bad = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    bad = v128.or(bad, f16x8_nonfinite(h));
    store_f16x8_as_f32(h, dst + (<usize>i << 2), true, scale);
  }
  let ok = !v128.any_true(bad);
  for (; i < n; i++) {
    const h = <u32>load<u16>(src + (<usize>i << 1));
    ok = ok && (h & 0x7c00) != 0x7c00;
    store<f32>(dst + (<usize>i << 2), reinterpret<f32>(f16_to_f32_bits(h)) * inv);
  }
  return finish(ok, finite_out);
}
