// Constants shared by the collective reduction kernels (collective_reduce.ts, collective_half.ts).
// Not exported from index.ts.

/** Reduction operators: compile-time constants, one exported kernel per operator and dtype. */
export const OP_SUM: i32 = 0;
export const OP_AVG: i32 = 1; // the sum, divided by the number of sources in the last pass
export const OP_MIN: i32 = 2;
export const OP_MAX: i32 = 3;

/**
 * Elements per block: a block of every source is combined before the next block starts, so
 * the running result (at most BLOCK × 8 bytes of scratch) stays in L1 between sources.
 */
export const BLOCK: i32 = 2048;
