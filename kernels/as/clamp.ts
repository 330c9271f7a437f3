// Clamp to [lo, hi]: out[i] = min(max(x[i], lo), hi); NaN stays NaN (wasm min/max propagate it).
// Reference: the float64 loop in test/clip.test.ts.

export function clamp_f32(x: usize, lo: f32, hi: f32, out: usize, n: i32): void {
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, f32x4.min(f32x4.max(v128.load(x + o), vlo), vhi));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<f32>(out + o, min<f32>(max<f32>(load<f32>(x + o), lo), hi));
  }
}

export function clamp_f64(x: usize, lo: f64, hi: f64, out: usize, n: i32): void {
  const vlo = f64x2.splat(lo);
  const vhi = f64x2.splat(hi);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = (<usize>i) << 3;
    v128.store(out + o, f64x2.min(f64x2.max(v128.load(x + o), vlo), vhi));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 3;
    store<f64>(out + o, min<f64>(max<f64>(load<f64>(x + o), lo), hi));
  }
}
