// 2-D transpose of a row-major rows × cols matrix: out[c, r] = x[r, c], for 4- and 8-byte
// elements. 4×4 (4-byte) and 2×2 (8-byte) blocks move through SIMD shuffles; leftover rows
// and columns are copied one element at a time. Tiles of TILE×TILE keep both sides in cache.
// Reference: the index loop in test/ops-shape.test.ts.

const TILE = 32;

@inline
function block4(x: usize, out: usize, rows: i32, cols: i32, r: i32, c: i32): void {
  const ld = <usize>cols << 2;
  const p = x + <usize>r * ld + (<usize>c << 2);
  const r0 = v128.load(p);
  const r1 = v128.load(p + ld);
  const r2 = v128.load(p + 2 * ld);
  const r3 = v128.load(p + 3 * ld);
  const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
  const t2 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5);
  const t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
  const lo = <usize>rows << 2;
  const q = out + <usize>c * lo + (<usize>r << 2);
  v128.store(q, v128.shuffle<i64>(t0, t2, 0, 2));
  v128.store(q + lo, v128.shuffle<i64>(t0, t2, 1, 3));
  v128.store(q + 2 * lo, v128.shuffle<i64>(t1, t3, 0, 2));
  v128.store(q + 3 * lo, v128.shuffle<i64>(t1, t3, 1, 3));
}

@inline
function block2(x: usize, out: usize, rows: i32, cols: i32, r: i32, c: i32): void {
  const ld = <usize>cols << 3;
  const p = x + <usize>r * ld + (<usize>c << 3);
  const r0 = v128.load(p);
  const r1 = v128.load(p + ld);
  const lo = <usize>rows << 3;
  const q = out + <usize>c * lo + (<usize>r << 3);
  v128.store(q, v128.shuffle<i64>(r0, r1, 0, 2));
  v128.store(q + lo, v128.shuffle<i64>(r0, r1, 1, 3));
}

@inline
function transposeT<T>(x: usize, out: usize, rows: i32, cols: i32): void {
  const b = 16 / sizeof<T>(); // block edge
  const rowsB = rows - (rows % b);
  const colsB = cols - (cols % b);
  for (let r0 = 0; r0 < rowsB; r0 += TILE) {
    const r1 = min<i32>(r0 + TILE, rowsB);
    for (let c0 = 0; c0 < colsB; c0 += TILE) {
      const c1 = min<i32>(c0 + TILE, colsB);
      for (let r = r0; r < r1; r += b) {
        for (let c = c0; c < c1; c += b) {
          if (sizeof<T>() == 4) block4(x, out, rows, cols, r, c);
          else block2(x, out, rows, cols, r, c);
        }
      }
    }
  }
  // Scalar tails: the leftover columns of the blocked rows, then the leftover rows entirely.
  for (let r = 0; r < rowsB; r++) {
    for (let c = colsB; c < cols; c++) {
      store<T>(out + (<usize>c * rows + r) * sizeof<T>(), load<T>(x + (<usize>r * cols + c) * sizeof<T>()));
    }
  }
  for (let r = rowsB; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      store<T>(out + (<usize>c * rows + r) * sizeof<T>(), load<T>(x + (<usize>r * cols + c) * sizeof<T>()));
    }
  }
}

export function transpose_32(x: usize, out: usize, rows: i32, cols: i32): void {
  transposeT<u32>(x, out, rows, cols);
}

export function transpose_64(x: usize, out: usize, rows: i32, cols: i32): void {
  transposeT<u64>(x, out, rows, cols);
}
