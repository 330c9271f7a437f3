import { releaseStackSlot, threadTable } from "./instance.js";
import * as layout from "./layout.ts";
import { runtime } from "./runtime.ts";

/**
 * Gives back what a thread that is gone held: its heap segments and its stack slot, and those of
 * every thread it started (a rank's kernel pool), found through the parent table; a thread that
 * already gave its own slot back (a pool closed normally) is no longer its parent's child. Call
 * only when the thread no longer runs and no other thread reads its memory. The threads it
 * started may still run: Deno keeps a terminated worker's own workers alive, so a pool thread
 * checks its slot's generation, bumped here before any memory goes back, at every wake-up and
 * stops without touching memory once it changed.
 */
export function releaseThread(slot: number): void {
  const { memory, heap } = runtime();
  const threads = threadTable(memory, layout);
  for (let child = 0; child < layout.STACK_SLOTS; child++) {
    if (child !== slot && Atomics.load(threads, 2 * child) === slot + 1) releaseThread(child);
  }
  heap.releaseOwner(slot);
  releaseStackSlot(memory, layout, slot);
}
