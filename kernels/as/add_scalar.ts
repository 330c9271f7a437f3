// Scalar broadcast add: out[i] = x[i] + s (the backward of sum and mean, accumulated into a
// gradient). Reference: the exactly rounded sums in test/ops-reduce.test.ts.

@inline
function addScalar<T>(x: usize, s: T, out: usize, n: i32): void {
  const lanes = 16 / sizeof<T>();
  const vs = v128.splat<T>(s);
  let i = 0;
  for (; i + lanes <= n; i += lanes) {
    const o = <usize>i * sizeof<T>();
    v128.store(out + o, v128.add<T>(v128.load(x + o), vs));
  }
  for (; i < n; i++) {
    const o = <usize>i * sizeof<T>();
    store<T>(out + o, load<T>(x + o) + s);
  }
}

export function add_scalar_f32(x: usize, s: f32, out: usize, n: i32): void {
  addScalar<f32>(x, s, out, n);
}

export function add_scalar_f64(x: usize, s: f64, out: usize, n: i32): void {
  addScalar<f64>(x, s, out, n);
}
