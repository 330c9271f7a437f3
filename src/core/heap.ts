import { CTRL, HEAP_BASE, PAGE_BYTES } from "./layout.ts";

/**
 * The process-wide heap above HEAP_BASE, shared by every thread: arenas reserve segments from
 * it with one atomic add, and it grows the memory when a segment ends past the current size.
 */
export class SharedHeap {
  private readonly ctrl: Int32Array;

  constructor(
    readonly memory: WebAssembly.Memory,
    /** Bytes of address space the heap may reach (its end, not its size). */
    readonly limit: number,
  ) {
    this.ctrl = new Int32Array(memory.buffer, 0, 256);
    Atomics.compareExchange(this.ctrl, CTRL.heapTop, 0, HEAP_BASE);
  }

  /** Start address of `bytes` fresh bytes, or a RangeError when the limit would be passed. */
  reserve(bytes: number): number {
    for (;;) {
      const top = Atomics.load(this.ctrl, CTRL.heapTop) >>> 0;
      const end = top + bytes;
      if (end > this.limit) {
        throw new RangeError(
          `plait: out of memory: ${bytes} bytes requested, ${this.limit - top} of the ${this.limit}-byte limit left`,
        );
      }
      if (Atomics.compareExchange(this.ctrl, CTRL.heapTop, top | 0, end | 0) === (top | 0)) {
        this.ensureSize(end);
        return top;
      }
    }
  }

  private ensureSize(end: number): void {
    if (this.memory.buffer.byteLength >= end) return;
    while (Atomics.compareExchange(this.ctrl, CTRL.growLock, 0, 1) !== 0) Atomics.wait(this.ctrl, CTRL.growLock, 1, 1);
    try {
      const have = this.memory.buffer.byteLength;
      if (have < end) this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } finally {
      Atomics.store(this.ctrl, CTRL.growLock, 0);
      Atomics.notify(this.ctrl, CTRL.growLock);
    }
  }
}
