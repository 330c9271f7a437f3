// f32 ↔ f64 casts. Reference: test/vectors/f64_to_f32.bin (numpy's astype(float32)) and
// Math.fround for f64 → f32; JavaScript's exact widening of Float32Array elements for f32 → f64
// (test/cast.test.ts). Both round to nearest even as the hardware does. A NaN stays a NaN; its
// payload is whatever the CPU's conversion gives (WebAssembly leaves it nondeterministic).

export function f32_to_f64(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = v128.load(src + (<usize>i << 2));
    const p = dst + (<usize>i << 3);
    v128.store(p, f64x2.promote_low_f32x4(x));
    v128.store(p, f64x2.promote_low_f32x4(i8x16.shuffle(x, x, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)), 16);
  }
  for (; i < n; i++) store<f64>(dst + (<usize>i << 3), <f64>load<f32>(src + (<usize>i << 2)));
}

export function f64_to_f32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = src + (<usize>i << 3);
    const a = f32x4.demote_f64x2_zero(v128.load(p));
    const b = f32x4.demote_f64x2_zero(v128.load(p, 16));
    v128.store(dst + (<usize>i << 2), i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), <f32>load<f64>(src + (<usize>i << 3)));
}
