// Bit-pattern comparisons the kernel suites share (test/cast.test.ts, test/round-half.test.ts,
// test/half-copy.test.ts). Not a test file.
import { expect } from "vitest";

/**
 * Index of the first element where `got` and `want` differ, or -1 (a fast compare of large
 * arrays, where toEqual is slow); NaN-aware when `nanEq` says two patterns are both NaN.
 */
export function firstDiff(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  nanEq?: (a: number, b: number) => boolean,
): number {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i] && !nanEq?.(got[i], want[i])) return i;
  return -1;
}
