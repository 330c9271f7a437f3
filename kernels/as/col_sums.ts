// Column sums: out[c] = Σ_r x[r * ld + c] for c in [0, cols), or out[c] += that sum when
// `accumulate` is set (a dense layer's bias gradient). Sums run down each column in the
// element type, so the error bound is rows · eps · Σ|x| per column.
// Reference: a sequential sum in the element type (bit for bit) in test/ops-arith.test.ts.

@inline
function colSums<T>(x: usize, out: usize, rows: i32, cols: i32, ld: i32, accumulate: i32): void {
  const lanes = 16 / sizeof<T>();
  const stride = <usize>ld * sizeof<T>();
  let c = 0;
  for (; c + lanes <= cols; c += lanes) {
    const o = <usize>c * sizeof<T>();
    let acc = accumulate ? v128.load(out + o) : v128.splat<T>(<T>0);
    let p = x + o;
    for (let r = 0; r < rows; r++) {
      acc = v128.add<T>(acc, v128.load(p));
      p += stride;
    }
    v128.store(out + o, acc);
  }
  for (; c < cols; c++) {
    const o = <usize>c * sizeof<T>();
    let acc: T = accumulate ? load<T>(out + o) : <T>0;
    let p = x + o;
    for (let r = 0; r < rows; r++) {
      acc += load<T>(p);
      p += stride;
    }
    store<T>(out + o, acc);
  }
}

export function col_sums_f32(x: usize, out: usize, rows: i32, cols: i32, ld: i32, accumulate: i32): void {
  colSums<f32>(x, out, rows, cols, ld, accumulate);
}

export function col_sums_f64(x: usize, out: usize, rows: i32, cols: i32, ld: i32, accumulate: i32): void {
  colSums<f64>(x, out, rows, cols, ld, accumulate);
}
