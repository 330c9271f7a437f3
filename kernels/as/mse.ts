// Mean squared error: loss = (1/n) Σ (p[i] − t[i])², and dp[i] = (p[i] − t[i]) · dscale when dp ≠ 0
// (the backward pass calls it again with dscale = 2 · (the loss's gradient) / n).
// Squares are summed in the element type within blocks of BLOCK elements, the block sums in
// f64, so the error bound is about (BLOCK / lanes) · eps · Σ d² for f32.
// Reference: the float64 loop in test/ops-loss.test.ts.

const BLOCK = 1024;

@inline
function hsum<T>(v: v128): f64 {
  if (sizeof<T>() == 4) {
    return (
      <f64>v128.extract_lane<T>(v, 0) +
      <f64>v128.extract_lane<T>(v, 1) +
      <f64>v128.extract_lane<T>(v, 2) +
      <f64>v128.extract_lane<T>(v, 3)
    );
  }
  return <f64>v128.extract_lane<T>(v, 0) + <f64>v128.extract_lane<T>(v, 1);
}

@inline
function mseT<T>(p: usize, t: usize, n: i32, dp: usize, dscale: T): f64 {
  const lanes = 16 / sizeof<T>();
  const vk = v128.splat<T>(dscale);
  let total: f64 = 0;
  let i = 0;
  while (i + lanes <= n) {
    const end = min<i32>(n, i + BLOCK);
    let acc = v128.splat<T>(<T>0);
    for (; i + lanes <= end; i += lanes) {
      const o = <usize>i * sizeof<T>();
      const d = v128.sub<T>(v128.load(p + o), v128.load(t + o));
      acc = v128.add<T>(acc, v128.mul<T>(d, d));
      if (dp) v128.store(dp + o, v128.mul<T>(d, vk));
    }
    total += hsum<T>(acc);
  }
  for (; i < n; i++) {
    const o = <usize>i * sizeof<T>();
    const d = load<T>(p + o) - load<T>(t + o);
    total += <f64>(d * d);
    if (dp) store<T>(dp + o, d * dscale);
  }
  return total / <f64>n;
}

export function mse_f32(p: usize, t: usize, n: i32, dp: usize, dscale: f32): f64 {
  return mseT<f32>(p, t, n, dp, dscale);
}

export function mse_f64(p: usize, t: usize, n: i32, dp: usize, dscale: f64): f64 {
  return mseT<f64>(p, t, n, dp, dscale);
}
