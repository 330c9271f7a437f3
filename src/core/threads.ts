import { releaseStackSlot } from "./instance.js";
import * as layout from "./layout.ts";
import { runtime } from "./runtime.ts";

/**
 * Gives back what a thread that is gone held: its heap segments and its stack slot, and those of
 * every thread it started (a rank's kernel pool), found through the parent table. Call only when
 * none of these threads runs any more and no other thread reads their memory; a thread that
 * already gave its own slot back (a pool closed normally) is no longer its parent's child.
 */
export function releaseThread(slot: number): void {
  const { memory, heap } = runtime();
  const parents = new Int32Array(memory.buffer, layout.PARENTS_BASE, layout.STACK_SLOTS);
  for (let child = 0; child < layout.STACK_SLOTS; child++) {
    if (child !== slot && Atomics.load(parents, child) === slot + 1) releaseThread(child);
  }
  heap.releaseOwner(slot);
  releaseStackSlot(memory, layout, slot);
}
