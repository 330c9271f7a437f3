import { bytesOf } from "../core/dtype.ts";
import { parallelFor } from "../core/parallel.ts";
import type { Tensor } from "../core/tensor.ts";

/**
 * Runs the fused optimizer kernel `fn` (e.g. "as.adam_f32") over leaf tensors of one shape and
 * dtype: its arguments are the tensors' pointers, the element count, then `scalars`. Large
 * leaves are split across the pool threads, each thread on its own contiguous range.
 */
export function runFused(fn: string, tensors: readonly Tensor[], scalars: readonly number[]): void {
  const bytes = bytesOf(tensors[0].dtype);
  const ptrs = tensors.map((t) => t.ptr);
  parallelFor(fn, tensors[0].size, (start, count) => [...ptrs.map((p) => p + start * bytes), count, ...scalars]);
}
