// Inverted dropout with a counter-based mask: element i (counted from `first`) is kept when
// hash(seed, i) ≥ threshold, an unsigned 32-bit compare (keep probability 1 − threshold/2³²),
// and kept elements are multiplied by `scale` = 1/(1 − p): out[i] = keep ? x[i]·scale : 0.
// The mask is a pure function of (seed, i), so the backward pass runs the same kernel on dy
// instead of storing a mask, and a split over threads gives the same result.
// hash = murmur3's fmix32 of (i · 0x9E3779B9 + seed).
// Reference: the same hash in JavaScript, in test/ops-dropout.test.ts.

@inline
function mix(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

@inline
function mix4(h: v128): v128 {
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x85ebca6b));
  h = v128.xor(h, i32x4.shr_u(h, 13));
  h = i32x4.mul(h, i32x4.splat(0xc2b2ae35));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

/** The keep mask (all ones / all zeros per lane) of the 4 elements starting at index i. */
@inline
function keep4(i: u32, seed: u32, threshold: u32): v128 {
  const idx = i32x4.add(i32x4.splat(i), i32x4(0, 1, 2, 3));
  const h = mix4(i32x4.add(i32x4.mul(idx, i32x4.splat(0x9e3779b9)), i32x4.splat(seed)));
  return i32x4.ge_u(h, i32x4.splat(threshold));
}

@inline
function keep1(i: u32, seed: u32, threshold: u32): bool {
  return mix(i * 0x9e3779b9 + seed) >= threshold;
}

export function dropout_f32(x: usize, out: usize, n: i32, first: u32, seed: u32, threshold: u32, scale: f32): void {
  const vs = f32x4.splat(scale);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const m = keep4(first + <u32>i, seed, threshold);
    v128.store(out + o, v128.and(f32x4.mul(v128.load(x + o), vs), m));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, keep1(first + <u32>i, seed, threshold) ? load<f32>(x + o) * scale : 0);
  }
}

export function dropout_f64(x: usize, out: usize, n: i32, first: u32, seed: u32, threshold: u32, scale: f64): void {
  const vs = f64x2.splat(scale);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 3;
    const m = keep4(first + <u32>i, seed, threshold);
    v128.store(out + o, v128.and(f64x2.mul(v128.load(x + o), vs), i64x2.extend_low_i32x4_s(m)));
    v128.store(out + o + 16, v128.and(f64x2.mul(v128.load(x + o + 16), vs), i64x2.extend_high_i32x4_s(m)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(out + o, keep1(first + <u32>i, seed, threshold) ? load<f64>(x + o) * scale : 0);
  }
}
