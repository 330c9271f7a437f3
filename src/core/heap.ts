import { CTRL, HEAP_BASE, PAGE_BYTES, SEGMENT_ENTRIES, SEGMENTS_BASE } from "./layout.ts";

/** Int32 fields of a segment table entry. */
const E = { ptr: 0, bytes: 1, owner: 2, size: 4 } as const;

/**
 * The process-wide heap above HEAP_BASE, shared by every thread. Arenas take segments from it;
 * each segment is recorded in a table in the shared memory with the stack slot of the thread
 * that owns it, so that when a thread is gone (a rank's worker ended or was terminated) the
 * thread that started it can give its segments back (`releaseOwner`), and later segments reuse
 * them (best fit, split) before the heap grows.
 */
export class SharedHeap {
  private readonly ctrl: Int32Array;

  constructor(
    readonly memory: WebAssembly.Memory,
    /** Bytes of address space the heap may reach (its end, not its size). */
    readonly limit: number,
    /** Stack slot of the thread whose arena reserves from this view of the heap. */
    private readonly owner: number,
  ) {
    this.ctrl = new Int32Array(memory.buffer, 0, 256);
    Atomics.compareExchange(this.ctrl, CTRL.heapTop, 0, HEAP_BASE);
  }

  /** Start address of `bytes` bytes for this thread, or a RangeError when the limit would be passed. */
  reserve(bytes: number): number {
    return this.locked((t) => {
      const reused = this.reuse(t, bytes);
      if (reused !== undefined) return reused;
      const count = this.ctrl[CTRL.segmentCount];
      const top = this.ctrl[CTRL.heapTop] >>> 0;
      const end = top + bytes;
      if (end > this.limit) {
        throw new RangeError(
          `plait: out of memory: ${bytes} bytes requested, ${this.limit - top} of the ${this.limit}-byte limit left`,
        );
      }
      if (count === SEGMENT_ENTRIES) {
        throw new RangeError(`plait: out of memory: the heap's ${SEGMENT_ENTRIES} segments are all taken`);
      }
      this.ensureSize(end);
      this.ctrl[CTRL.heapTop] = end | 0;
      this.ctrl[CTRL.segmentCount] = count + 1;
      setEntry(t, count, top, bytes, this.owner);
      return top;
    });
  }

  /**
   * Grows this thread's segment that ends at `end` by `bytes` in place, if it is the topmost
   * segment (nothing was reserved after it) and the limit allows; false otherwise.
   */
  extend(end: number, bytes: number): boolean {
    return this.locked((t) => {
      const top = this.ctrl[CTRL.heapTop] >>> 0;
      if (top !== end || top + bytes > this.limit) return false;
      const count = this.ctrl[CTRL.segmentCount];
      for (let i = count - 1; i >= 0; i--) {
        const ptr = t[i * E.size + E.ptr] >>> 0;
        const size = t[i * E.size + E.bytes] >>> 0;
        if (ptr + size !== end || t[i * E.size + E.owner] !== this.owner + 1) continue;
        this.ensureSize(end + bytes);
        this.ctrl[CTRL.heapTop] = (end + bytes) | 0;
        t[i * E.size + E.bytes] = (size + bytes) | 0;
        return true;
      }
      return false;
    });
  }

  /**
   * Gives back every segment owned by stack slot `owner` (a thread that is gone and whose memory
   * no other thread reads), merging free neighbours; a free run at the top lowers the heap's top.
   */
  releaseOwner(owner: number): void {
    // A thread stopped while it held the lock (terminated mid-reserve) would hold it forever: the
    // lock records its holder's slot, so the thread giving that slot back takes the lock over.
    Atomics.compareExchange(this.ctrl, CTRL.segmentLock, owner + 1, 0);
    this.locked((t) => {
      for (let i = 0; i < this.ctrl[CTRL.segmentCount]; i++)
        if (t[i * E.size + E.owner] === owner + 1) t[i * E.size + E.owner] = 0;
      this.coalesce(t);
    });
  }

  /** Bytes in segments that no thread owns (reusable before the heap grows). */
  get freeBytes(): number {
    return this.locked((t) => {
      let sum = 0;
      for (let i = 0; i < this.ctrl[CTRL.segmentCount]; i++)
        if (t[i * E.size + E.owner] === 0) sum += t[i * E.size + E.bytes] >>> 0;
      return sum;
    });
  }

  /** Takes the smallest free segment that fits, splitting off the rest; undefined if none fits. */
  private reuse(t: Int32Array, bytes: number): number | undefined {
    const count = this.ctrl[CTRL.segmentCount];
    let best = -1;
    for (let i = 0; i < count; i++) {
      const size = t[i * E.size + E.bytes] >>> 0;
      const fits = t[i * E.size + E.owner] === 0 && size >= bytes;
      // a split needs a free entry for the rest
      if (fits && (size === bytes || count < SEGMENT_ENTRIES) && (best < 0 || size < t[best * E.size + E.bytes] >>> 0))
        best = i;
    }
    if (best < 0) return undefined;
    const ptr = t[best * E.size + E.ptr] >>> 0;
    const size = t[best * E.size + E.bytes] >>> 0;
    setEntry(t, best, ptr, bytes, this.owner);
    if (size > bytes) {
      setEntry(t, count, ptr + bytes, size - bytes, -1);
      this.ctrl[CTRL.segmentCount] = count + 1;
    }
    return ptr;
  }

  /** Merges adjacent free entries; drops a free run that ends at the top (the top moves down). */
  private coalesce(t: Int32Array): void {
    const free: { ptr: number; bytes: number }[] = [];
    let kept = 0;
    for (let i = 0; i < this.ctrl[CTRL.segmentCount]; i++) {
      const [ptr, bytes, owner] = [t[i * E.size] >>> 0, t[i * E.size + 1] >>> 0, t[i * E.size + 2]];
      if (owner === 0) free.push({ ptr, bytes });
      else setEntry(t, kept++, ptr, bytes, owner - 1);
    }
    free.sort((a, b) => a.ptr - b.ptr);
    const merged: { ptr: number; bytes: number }[] = [];
    for (const f of free) {
      const last = merged.at(-1);
      if (last && last.ptr + last.bytes === f.ptr) last.bytes += f.bytes;
      else merged.push({ ...f });
    }
    const last = merged.at(-1);
    if (last && last.ptr + last.bytes === this.ctrl[CTRL.heapTop] >>> 0) {
      this.ctrl[CTRL.heapTop] = last.ptr | 0;
      merged.pop();
    }
    for (const f of merged) setEntry(t, kept++, f.ptr, f.bytes, -1);
    this.ctrl[CTRL.segmentCount] = kept;
  }

  /**
   * Runs `fn` holding the segment table's lock (segments are large and rare: a plain spin/wait
   * lock). The lock holds its holder's stack slot + 1, so releaseOwner can free it for a thread
   * that was stopped while holding it.
   */
  private locked<T>(fn: (table: Int32Array) => T): T {
    for (;;) {
      const held = Atomics.compareExchange(this.ctrl, CTRL.segmentLock, 0, this.owner + 1);
      if (held === 0) break;
      Atomics.wait(this.ctrl, CTRL.segmentLock, held, 1);
    }
    try {
      return fn(new Int32Array(this.memory.buffer, SEGMENTS_BASE, SEGMENT_ENTRIES * E.size));
    } finally {
      Atomics.store(this.ctrl, CTRL.segmentLock, 0);
      Atomics.notify(this.ctrl, CTRL.segmentLock);
    }
  }

  /** Grows the memory to reach `end` (called under the lock, so one thread grows at a time). */
  private ensureSize(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (have < end) this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
  }
}

/** Writes entry `i`: owner −1 marks it free. */
function setEntry(t: Int32Array, i: number, ptr: number, bytes: number, owner: number): void {
  t[i * E.size + E.ptr] = ptr | 0;
  t[i * E.size + E.bytes] = bytes | 0;
  t[i * E.size + E.owner] = owner + 1;
}
