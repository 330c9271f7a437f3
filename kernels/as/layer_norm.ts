// Layer normalisation over the last axis, per row r of x[rows, cols]:
//   μ = mean(x_r),  σ² = mean((x_r − μ)²) (two passes, for stability),  ρ = 1 / √(σ² + eps)
//   forward:  out = (x − μ) ρ γ + β;  μ and ρ are stored per row when mean/rstd ≠ 0
//   backward: x̂ = (x − μ) ρ,  g = dy γ,
//             dx = ρ (g − mean(g) − x̂ mean(g x̂))   (when dx ≠ 0; written, or added when accumulate ≠ 0)
//             dγ += Σ_r dy x̂,  dβ += Σ_r dy          (when their pointers ≠ 0)
// Row statistics are summed in the element type's lanes, then in f64 across lanes.
// Reference: the float64 loops in test/ops-layernorm.test.ts.

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
function rowMean<T>(xr: usize, cols: i32): T {
  const lanes = 16 / sizeof<T>();
  let acc = v128.splat<T>(<T>0);
  let c = 0;
  for (; c + lanes <= cols; c += lanes) acc = v128.add<T>(acc, v128.load(xr + <usize>c * sizeof<T>()));
  let s = hsum<T>(acc);
  for (; c < cols; c++) s += <f64>load<T>(xr + <usize>c * sizeof<T>());
  return <T>(s / <f64>cols);
}

@inline
function rowRstd<T>(xr: usize, cols: i32, mu: T, eps: f64): T {
  const lanes = 16 / sizeof<T>();
  const vmu = v128.splat<T>(mu);
  let acc = v128.splat<T>(<T>0);
  let c = 0;
  for (; c + lanes <= cols; c += lanes) {
    const d = v128.sub<T>(v128.load(xr + <usize>c * sizeof<T>()), vmu);
    acc = v128.add<T>(acc, v128.mul<T>(d, d));
  }
  let q = hsum<T>(acc);
  for (; c < cols; c++) {
    const d = <f64>(load<T>(xr + <usize>c * sizeof<T>()) - mu);
    q += d * d;
  }
  return <T>(1.0 / Math.sqrt(q / <f64>cols + eps));
}

@inline
function layerNorm<T>(
  x: usize,
  gamma: usize,
  beta: usize,
  out: usize,
  mean: usize,
  rstd: usize,
  rows: i32,
  cols: i32,
  eps: f64,
): void {
  const lanes = 16 / sizeof<T>();
  const rowBytes = <usize>cols * sizeof<T>();
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const or = out + <usize>r * rowBytes;
    const mu = rowMean<T>(xr, cols);
    const rho = rowRstd<T>(xr, cols, mu, eps);
    if (mean) store<T>(mean + <usize>r * sizeof<T>(), mu);
    if (rstd) store<T>(rstd + <usize>r * sizeof<T>(), rho);
    const vmu = v128.splat<T>(mu);
    const vrho = v128.splat<T>(rho);
    let c = 0;
    for (; c + lanes <= cols; c += lanes) {
      const o = <usize>c * sizeof<T>();
      const xhat = v128.mul<T>(v128.sub<T>(v128.load(xr + o), vmu), vrho);
      v128.store(or + o, v128.add<T>(v128.mul<T>(xhat, v128.load(gamma + o)), v128.load(beta + o)));
    }
    for (; c < cols; c++) {
      const o = <usize>c * sizeof<T>();
      store<T>(or + o, (load<T>(xr + o) - mu) * rho * load<T>(gamma + o) + load<T>(beta + o));
    }
  }
}

@inline
function layerNormBackward<T>(
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  dy: usize,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
  rows: i32,
  cols: i32,
  accumulate: i32,
): void {
  const lanes = 16 / sizeof<T>();
  const rowBytes = <usize>cols * sizeof<T>();
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const gr = dy + <usize>r * rowBytes;
    const dr = dx + <usize>r * rowBytes;
    const mu = load<T>(mean + <usize>r * sizeof<T>());
    const rho = load<T>(rstd + <usize>r * sizeof<T>());
    const vmu = v128.splat<T>(mu);
    const vrho = v128.splat<T>(rho);
    // Pass 1: Σ g and Σ g x̂, and the parameter gradients.
    let accG = v128.splat<T>(<T>0);
    let accGX = v128.splat<T>(<T>0);
    let c = 0;
    for (; c + lanes <= cols; c += lanes) {
      const o = <usize>c * sizeof<T>();
      const xhat = v128.mul<T>(v128.sub<T>(v128.load(xr + o), vmu), vrho);
      const d = v128.load(gr + o);
      const g = v128.mul<T>(d, v128.load(gamma + o));
      accG = v128.add<T>(accG, g);
      accGX = v128.add<T>(accGX, v128.mul<T>(g, xhat));
      if (dgamma) v128.store(dgamma + o, v128.add<T>(v128.load(dgamma + o), v128.mul<T>(d, xhat)));
      if (dbeta) v128.store(dbeta + o, v128.add<T>(v128.load(dbeta + o), d));
    }
    let sG = hsum<T>(accG);
    let sGX = hsum<T>(accGX);
    for (; c < cols; c++) {
      const o = <usize>c * sizeof<T>();
      const xhat = (load<T>(xr + o) - mu) * rho;
      const d = load<T>(gr + o);
      const g = d * load<T>(gamma + o);
      sG += <f64>g;
      sGX += <f64>(g * xhat);
      if (dgamma) store<T>(dgamma + o, load<T>(dgamma + o) + d * xhat);
      if (dbeta) store<T>(dbeta + o, load<T>(dbeta + o) + d);
    }
    if (!dx) continue;
    // Pass 2: dx.
    const a = <T>(sG / <f64>cols);
    const b = <T>(sGX / <f64>cols);
    const va = v128.splat<T>(a);
    const vb = v128.splat<T>(b);
    for (c = 0; c + lanes <= cols; c += lanes) {
      const o = <usize>c * sizeof<T>();
      const xhat = v128.mul<T>(v128.sub<T>(v128.load(xr + o), vmu), vrho);
      const g = v128.mul<T>(v128.load(gr + o), v128.load(gamma + o));
      let v = v128.mul<T>(vrho, v128.sub<T>(v128.sub<T>(g, va), v128.mul<T>(xhat, vb)));
      if (accumulate) v = v128.add<T>(v, v128.load(dr + o));
      v128.store(dr + o, v);
    }
    for (; c < cols; c++) {
      const o = <usize>c * sizeof<T>();
      const xhat = (load<T>(xr + o) - mu) * rho;
      const g = load<T>(gr + o) * load<T>(gamma + o);
      let v = rho * (g - a - xhat * b);
      if (accumulate) v += load<T>(dr + o);
      store<T>(dr + o, v);
    }
  }
}

export function layer_norm_f32(
  x: usize,
  gamma: usize,
  beta: usize,
  out: usize,
  mean: usize,
  rstd: usize,
  rows: i32,
  cols: i32,
  eps: f64,
): void {
  layerNorm<f32>(x, gamma, beta, out, mean, rstd, rows, cols, eps);
}

export function layer_norm_f64(
  x: usize,
  gamma: usize,
  beta: usize,
  out: usize,
  mean: usize,
  rstd: usize,
  rows: i32,
  cols: i32,
  eps: f64,
): void {
  layerNorm<f64>(x, gamma, beta, out, mean, rstd, rows, cols, eps);
}

export function layer_norm_backward_f32(
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  dy: usize,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
  rows: i32,
  cols: i32,
  accumulate: i32,
): void {
  layerNormBackward<f32>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, accumulate);
}

export function layer_norm_backward_f64(
  x: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  dy: usize,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
  rows: i32,
  cols: i32,
  accumulate: i32,
): void {
  layerNormBackward<f64>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, accumulate);
}
