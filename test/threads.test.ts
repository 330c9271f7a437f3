import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { SharedHeap } from "../src/core/heap.ts";
import { CTRL, HEAP_BASE, PAGE_BYTES } from "../src/core/layout.ts";
import { runtime } from "../src/core/runtime.ts";
import { liveWorkers, spawn } from "../src/launch/index.ts";
import { usedStackSlots } from "./stack-slots.ts";

// What a thread that is gone held comes back: its heap segments and its stack slot, and those of
// the kernel pool it started. Workers load plait from dist/: `npx tsc -p tsconfig.build.json` first.

const FIXTURE = new URL("./fixtures/memory.mjs", import.meta.url);

const heapTop = () => new Int32Array(runtime().memory.buffer, 0, 256)[CTRL.heapTop] >>> 0;

async function withThreads<T>(threads: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PLAIT_THREADS;
  process.env.PLAIT_THREADS = threads;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.PLAIT_THREADS;
    else process.env.PLAIT_THREADS = saved;
  }
}

describe("threads that are gone give back their memory and stack slots", () => {
  it("worlds spawned one after another reuse the same memory", async () => {
    const slots = usedStackSlots();
    await spawn(FIXTURE, "hold", { devices: 2, args: { mib: 40 } });
    const top = heapTop();
    const bytes = runtime().memory.buffer.byteLength;
    // without reuse, each world would take 2 × 40 MiB more
    for (let i = 0; i < 4; i++) await spawn(FIXTURE, "hold", { devices: 2, args: { mib: 40 } });
    expect(heapTop()).toBe(top);
    expect(runtime().memory.buffer.byteLength).toBe(bytes);
    expect(usedStackSlots()).toBe(slots);
  });

  it("a failed world's ranks, and the kernel pools inside them, are released too", async () => {
    const slots = usedStackSlots();
    // two kernel threads per rank: each rank starts a pool worker of its own
    const sizes = await withThreads("2", () => spawn<number>(FIXTURE, "hold", { devices: 2, args: { mib: 40 } }));
    expect(sizes).toEqual([2, 2]);
    expect(usedStackSlots()).toBe(slots);
    const top = heapTop();
    for (let i = 0; i < 3; i++) {
      const failed = withThreads("2", () => spawn(FIXTURE, "hold", { devices: 2, args: { mib: 40, failRank: 1 } }));
      await expect(failed).rejects.toBeInstanceOf(CommError);
      expect(liveWorkers()).toBe(0);
      // rank 0 was terminated in its barrier with its pool thread running: nothing of it is left
      expect(usedStackSlots()).toBe(slots);
      expect(heapTop()).toBe(top);
    }
  });
});

/** The largest run of [HEAP_BASE, limit) that no live segment covers. */
function largestGap(live: { ptr: number; bytes: number }[], limit: number): number {
  let largest = 0;
  let at = HEAP_BASE;
  for (const s of [...live].sort((a, b) => a.ptr - b.ptr)) {
    largest = Math.max(largest, s.ptr - at);
    at = s.ptr + s.bytes;
  }
  return Math.max(largest, limit - at);
}

describe("SharedHeap", () => {
  /** A fresh shared memory with its own control words: owners 0..3 take and give back segments. */
  function heapOf(limitMiB: number) {
    const memory = new WebAssembly.Memory({ initial: HEAP_BASE / PAGE_BYTES, maximum: 1024, shared: true });
    const limit = HEAP_BASE + limitMiB * 2 ** 20;
    return { memory, limit, views: [0, 1, 2, 3].map((owner) => new SharedHeap(memory, limit, owner)) };
  }

  it("never hands out overlapping segments, reuses given-back ones, and stays within its limit", () => {
    type Op = { owner: number; kib: number } | { release: number };
    const op = fc.oneof(
      fc.record({ owner: fc.integer({ min: 0, max: 3 }), kib: fc.integer({ min: 1, max: 4096 }) }),
      fc.record({ release: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops: Op[]) => {
        const { memory, limit, views } = heapOf(16);
        const live: { ptr: number; bytes: number; owner: number }[] = [];
        for (const o of ops) {
          if ("release" in o) {
            views[0].releaseOwner(o.release);
            for (let i = live.length - 1; i >= 0; i--) if (live[i].owner === o.release) live.splice(i, 1);
            continue;
          }
          const bytes = o.kib * 1024;
          let ptr: number;
          try {
            ptr = views[o.owner].reserve(bytes);
          } catch (e) {
            expect(e).toBeInstanceOf(RangeError);
            expect(largestGap(live, limit)).toBeLessThan(bytes); // refused only when no free run fits it
            continue;
          }
          expect(ptr).toBeGreaterThanOrEqual(HEAP_BASE);
          expect(ptr + bytes).toBeLessThanOrEqual(limit);
          expect(ptr + bytes).toBeLessThanOrEqual(memory.buffer.byteLength);
          for (const s of live) expect(ptr + bytes <= s.ptr || s.ptr + s.bytes <= ptr).toBe(true);
          live.push({ ptr, bytes, owner: o.owner });
        }
        // once every owner gave back, the whole heap is one free run again: the top is at the base
        for (const v of [0, 1, 2, 3]) views[0].releaseOwner(v);
        expect(new Int32Array(memory.buffer, 0, 256)[CTRL.heapTop]).toBe(HEAP_BASE);
        expect(views[0].freeBytes).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("a thread stopped while holding the segment lock does not hang the others: giving back its slot frees the lock", () => {
    const { memory, views } = heapOf(64);
    const [a, b] = views;
    const ctrl = new Int32Array(memory.buffer, 0, 256);
    a.reserve(1 << 20);
    expect(ctrl[CTRL.segmentLock]).toBe(0); // released after use
    ctrl[CTRL.segmentLock] = 0 + 1; // as if the thread of slot 0 was terminated inside reserve()
    b.releaseOwner(0); // what releaseThread does for a thread that is gone; would wait forever before
    expect(ctrl[CTRL.segmentLock]).toBe(0);
    expect(b.reserve(1 << 20)).toBeGreaterThanOrEqual(HEAP_BASE);
  });

  it("fits a later segment into a given-back one, best fit first, and splits off the rest", () => {
    const { views } = heapOf(64);
    const [a, b] = views;
    const small = a.reserve(2 << 20);
    b.reserve(1 << 20); // keeps the runs apart
    const large = a.reserve(8 << 20);
    b.reserve(1 << 20);
    a.releaseOwner(0);
    expect(a.freeBytes).toBe(10 << 20);
    expect(b.reserve(1 << 20)).toBe(small); // the 2 MiB run is the best fit
    expect(b.reserve(4 << 20)).toBe(large); // the 1 MiB rest of the small run is too small
    expect(b.reserve(4 << 20)).toBe(large + (4 << 20));
    expect(a.freeBytes).toBe(1 << 20);
  });
});
