// Elementwise arithmetic over f32 (f32x4) and f64 (f64x2): add, sub, mul, div, scale, axpy,
// fma (a·b + c; axpy and fma fused in the relaxed build). Each loop is written once, generic over the lane type, and instantiated per dtype;
// the scalar tail beside each SIMD loop handles the last n mod lanes elements.
// Reference: the float64 loops in test/elementwise.test.ts.
import { madd } from "./math";

const ADD: i32 = 0;
const SUB: i32 = 1;
const MUL: i32 = 2;
const DIV: i32 = 3;

// out[i] = a[i] op b[i]; `op` is a constant at every call site, so each copy keeps one branch.
// @ts-ignore: decorator
@inline
function binary<T>(a: usize, b: usize, out: usize, n: i32, op: i32): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    const x = v128.load(a + o);
    const y = v128.load(b + o);
    let r: v128;
    if (op == ADD) r = v128.add<T>(x, y);
    else if (op == SUB) r = v128.sub<T>(x, y);
    else if (op == MUL) r = v128.mul<T>(x, y);
    else r = v128.div<T>(x, y);
    v128.store(out + o, r);
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    const x = load<T>(a + o);
    const y = load<T>(b + o);
    let r: T;
    if (op == ADD) r = x + y;
    else if (op == SUB) r = x - y;
    else if (op == MUL) r = x * y;
    else r = x / y;
    store<T>(out + o, r);
  }
}

// out[i] = s·x[i]
// @ts-ignore: decorator
@inline
function scaleLoop<T>(x: usize, s: T, out: usize, n: i32): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const vs = v128.splat<T>(s);
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    v128.store(out + o, v128.mul<T>(v128.load(x + o), vs));
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    store<T>(out + o, load<T>(x + o) * s);
  }
}

// y[i] += alpha·x[i] (fused in the relaxed build)
// @ts-ignore: decorator
@inline
function axpyLoop<T>(alpha: T, x: usize, y: usize, n: i32): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  const va = v128.splat<T>(alpha);
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    v128.store(y + o, madd<T>(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    store<T>(y + o, alpha * load<T>(x + o) + load<T>(y + o));
  }
}

// out[i] = a[i]·b[i] + c[i]
// @ts-ignore: decorator
@inline
function fmaLoop<T>(a: usize, b: usize, c: usize, out: usize, n: i32): void {
  const lanes = 16 / sizeof<T>();
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i << shift;
    v128.store(out + o, madd<T>(v128.load(a + o), v128.load(b + o), v128.load(c + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << shift;
    store<T>(out + o, load<T>(a + o) * load<T>(b + o) + load<T>(c + o));
  }
}

export function add_f32(a: usize, b: usize, out: usize, n: i32): void {
  binary<f32>(a, b, out, n, ADD);
}
export function sub_f32(a: usize, b: usize, out: usize, n: i32): void {
  binary<f32>(a, b, out, n, SUB);
}
export function mul_f32(a: usize, b: usize, out: usize, n: i32): void {
  binary<f32>(a, b, out, n, MUL);
}
export function div_f32(a: usize, b: usize, out: usize, n: i32): void {
  binary<f32>(a, b, out, n, DIV);
}
export function scale_f32(x: usize, s: f32, out: usize, n: i32): void {
  scaleLoop<f32>(x, s, out, n);
}
export function axpy_f32(alpha: f32, x: usize, y: usize, n: i32): void {
  axpyLoop<f32>(alpha, x, y, n);
}
export function fma_f32(a: usize, b: usize, c: usize, out: usize, n: i32): void {
  fmaLoop<f32>(a, b, c, out, n);
}

export function add_f64(a: usize, b: usize, out: usize, n: i32): void {
  binary<f64>(a, b, out, n, ADD);
}
export function sub_f64(a: usize, b: usize, out: usize, n: i32): void {
  binary<f64>(a, b, out, n, SUB);
}
export function mul_f64(a: usize, b: usize, out: usize, n: i32): void {
  binary<f64>(a, b, out, n, MUL);
}
export function div_f64(a: usize, b: usize, out: usize, n: i32): void {
  binary<f64>(a, b, out, n, DIV);
}
export function scale_f64(x: usize, s: f64, out: usize, n: i32): void {
  scaleLoop<f64>(x, s, out, n);
}
export function axpy_f64(alpha: f64, x: usize, y: usize, n: i32): void {
  axpyLoop<f64>(alpha, x, y, n);
}
export function fma_f64(a: usize, b: usize, c: usize, out: usize, n: i32): void {
  fmaLoop<f64>(a, b, c, out, n);
}
