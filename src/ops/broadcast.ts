import { bytesOf } from "../core/dtype.ts";
import { PARALLEL_MIN_ELEMENTS, parallelFor } from "../core/parallel.ts";
import type { Tensor } from "../core/tensor.ts";

// Threaded calls of the row-broadcast kernels (kernels/as/add_rows.ts, col_sums.ts).

/** out[r, :] = x[r, :] + b for x seen as [rows, cols]; rows split across the pool when large. */
export function addRows(x: Tensor, b: Tensor, out: Tensor, rows: number, cols: number): void {
  const bytes = bytesOf(x.dtype);
  const xp = x.ptr;
  const bp = b.ptr;
  const op = out.ptr;
  const rowBytes = cols * bytes;
  parallelFor(`as.add_rows_${x.dtype}`, rows, (r, n) => [xp + r * rowBytes, bp, op + r * rowBytes, n, cols], {
    minElements: Math.ceil(PARALLEL_MIN_ELEMENTS / Math.max(cols, 1)),
    align: 1,
  });
}

/** out[c] = Σ_r x[r, c] (or out[c] += it when `accumulate`); columns split across the pool when large. */
export function colSums(x: Tensor, out: Tensor, rows: number, cols: number, accumulate: boolean): void {
  const bytes = bytesOf(x.dtype);
  const xp = x.ptr;
  const op = out.ptr;
  parallelFor(
    `as.col_sums_${x.dtype}`,
    cols,
    (c, n) => [xp + c * bytes, op + c * bytes, rows, n, cols, accumulate ? 1 : 0],
    { minElements: Math.ceil(PARALLEL_MIN_ELEMENTS / Math.max(rows, 1)), align: 16 / bytes },
  );
}
