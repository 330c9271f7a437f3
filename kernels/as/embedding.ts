// Embedding lookup and its gradient, for ids already checked to lie in [0, table rows):
//   gather:      out[i, :] = table[ids[i], :]         (a row copy each, for any element type)
//   scatter-add: dtable[ids[i], :] += dy[i, :]         (in id order, so repeated ids add up)
// Reference: the float64 loops in test/ops-embedding.test.ts.

export function embedding_gather(table: usize, ids: usize, out: usize, n: i32, rowBytes: i32): void {
  const rb = <usize>rowBytes;
  for (let i = 0; i < n; i++) {
    const id = <usize>load<i32>(ids + (<usize>i << 2));
    memory.copy(out + <usize>i * rb, table + id * rb, rb);
  }
}

@inline
function scatterAdd<T>(dy: usize, ids: usize, dtable: usize, n: i32, dim: i32): void {
  const lanes = 16 / sizeof<T>();
  const rowBytes = <usize>dim * sizeof<T>();
  for (let i = 0; i < n; i++) {
    const src = dy + <usize>i * rowBytes;
    const dst = dtable + <usize>load<i32>(ids + (<usize>i << 2)) * rowBytes;
    let c = 0;
    for (; c + lanes <= dim; c += lanes) {
      const o = <usize>c * sizeof<T>();
      v128.store(dst + o, v128.add<T>(v128.load(dst + o), v128.load(src + o)));
    }
    for (; c < dim; c++) {
      const o = <usize>c * sizeof<T>();
      store<T>(dst + o, load<T>(dst + o) + load<T>(src + o));
    }
  }
}

export function embedding_scatter_add_f32(dy: usize, ids: usize, dtable: usize, n: i32, dim: i32): void {
  scatterAdd<f32>(dy, ids, dtable, n, dim);
}

export function embedding_scatter_add_f64(dy: usize, ids: usize, dtable: usize, n: i32, dim: i32): void {
  scatterAdd<f64>(dy, ids, dtable, n, dim);
}
