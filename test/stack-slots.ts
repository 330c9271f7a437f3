import { CTRL, STACK_SLOTS } from "../src/core/layout.ts";
import { runtime } from "../src/core/runtime.ts";

/** How many kernel stack slots are taken: one per live thread that runs kernels. */
export function usedStackSlots(): number {
  const words = new Int32Array(runtime().memory.buffer, 0, 256);
  let n = 0;
  for (let w = 0; w < STACK_SLOTS / 32; w++) {
    for (let bits = words[CTRL.stackBitmap + w] >>> 0; bits; bits &= bits - 1) n++;
  }
  return n;
}
