import type { DType } from "../core/dtype.ts";
import { REDUCE_OPS, type ReduceOp } from "./types.ts";

/** Descriptor codes of the operators: what ranks compare to detect mismatched calls. */
export const OP_CODE: Readonly<Record<ReduceOp, number>> = { sum: 0, avg: 1, min: 2, max: 3 };

const REDUCIBLE: readonly DType[] = ["f64", "f32", "f16", "bf16", "i32"];

/**
 * The AssemblyScript kernel that reduces `dtype` with `op` (kernels/as/collective_reduce.ts and
 * collective_half.ts: one export per pair, `coll_<op>_<dtype>`), by operator, then dtype.
 */
export const REDUCE_KERNEL: Readonly<Record<ReduceOp, Readonly<Partial<Record<DType, string>>>>> = Object.fromEntries(
  REDUCE_OPS.map((op) => [op, Object.fromEntries(REDUCIBLE.map((d) => [d, `coll_${op}_${d}`]))]),
) as any;

/** Scratch bytes one kernel call needs: a block (2048 elements) of the widest accumulator, f64. */
export const SCRATCH_BYTES = 2048 * 8;
