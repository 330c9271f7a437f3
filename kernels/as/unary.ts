// out[i] = e^x[i] and out[i] = ln x[i] over f32, with the approximations of math.ts.
// The scalar tail runs the same vector code on one lane, so every element gets the same
// rounding wherever it sits. Reference: float64 Math.exp / Math.log in test/elementwise-math.test.ts.
import { expv, logv } from "./math";

export function exp_f32(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, expv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(expv(f32x4.splat(load<f32>(x + o))), 0));
  }
}

export function log_f32(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, logv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(logv(f32x4.splat(load<f32>(x + o))), 0));
  }
}
