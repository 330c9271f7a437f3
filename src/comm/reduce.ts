import type { DType } from "../core/dtype.ts";
import type { ReduceOp } from "./types.ts";

/** Operator codes of the collective kernels (kernels/as/collective_common.ts). */
export const OP_CODE: Readonly<Record<ReduceOp, number>> = { sum: 0, avg: 1, min: 2, max: 3 };

/** The reduction kernel (in the AssemblyScript module) for each dtype a collective can reduce. */
export const REDUCE_KERNEL: Readonly<Partial<Record<DType, string>>> = {
  f64: "coll_reduce_f64",
  f32: "coll_reduce_f32",
  f16: "coll_reduce_f16",
  bf16: "coll_reduce_bf16",
  i32: "coll_reduce_i32",
};

/** Scratch bytes one kernel call needs: a block (2048 elements) of the widest accumulator, f64. */
export const SCRATCH_BYTES = 2048 * 8;
