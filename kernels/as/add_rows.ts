// Row-vector broadcast add: out[r, c] = x[r, c] + b[c] (a dense layer's bias over a batch).
// Reference: the exactly rounded float64 sum in test/ops-arith.test.ts.

@inline
function addRows<T>(x: usize, b: usize, out: usize, rows: i32, cols: i32): void {
  const lanes = 16 / sizeof<T>();
  const rowBytes = <usize>cols * sizeof<T>();
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const or = out + <usize>r * rowBytes;
    let c = 0;
    for (; c + lanes <= cols; c += lanes) {
      const o = <usize>c * sizeof<T>();
      v128.store(or + o, v128.add<T>(v128.load(xr + o), v128.load(b + o)));
    }
    for (; c < cols; c++) {
      const o = <usize>c * sizeof<T>();
      store<T>(or + o, load<T>(xr + o) + load<T>(b + o));
    }
  }
}

export function add_rows_f32(x: usize, b: usize, out: usize, rows: i32, cols: i32): void {
  addRows<f32>(x, b, out, rows, cols);
}

export function add_rows_f64(x: usize, b: usize, out: usize, rows: i32, cols: i32): void {
  addRows<f64>(x, b, out, rows, cols);
}
