import { ALIGN } from "./layout.ts";

/** Where an arena gets address space from: the shared heap, or a fixed region in tests. */
export interface SegmentSource {
  reserve(bytes: number): number;
  /**
   * Grows this arena's segment that ends at `end` by `bytes` in place, when nothing was reserved
   * above it since and the limit allows; false otherwise (nothing changed).
   */
  extend?(end: number, bytes: number): boolean;
}

interface Block {
  ptr: number;
  size: number;
}

/** Segments are reserved in steps of this size, so small tensors do not each hit the atomic heap. */
const SEGMENT_BYTES = 16 << 20;

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * A thread's allocator over the shared memory: best fit from an address-ordered free list,
 * neighbours merged on free. Every block is ALIGN-aligned; a zero-byte request still gets a
 * distinct block. Bookkeeping is checked before anything changes, so a failed call leaves
 * the arena's blocks as they were (it may keep a segment it reserved on the way, free).
 */
export class Arena {
  private readonly free_: Block[] = [];
  private readonly live = new Map<number, number>();
  private inUse = 0;
  private reserved = 0;
  /** End of the highest segment this arena reserved. */
  private end = 0;

  constructor(private readonly source: SegmentSource) {}

  /** Bytes held by live allocations (rounded up to ALIGN). */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** Bytes this arena has taken from its source. */
  get bytesReserved(): number {
    return this.reserved;
  }

  alloc(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(`plait: alloc(bytes) expects a non-negative integer, got ${bytes}`);
    }
    const size = alignUp(Math.max(bytes, 1));
    let best = -1;
    for (let i = 0; i < this.free_.length; i++) {
      const b = this.free_[i];
      if (b.size >= size && (best < 0 || b.size < this.free_[best].size)) best = i;
    }
    if (best < 0) best = this.grow(size);
    const block = this.free_[best];
    const ptr = block.ptr;
    if (block.size === size) this.free_.splice(best, 1);
    else {
      block.ptr += size;
      block.size -= size;
    }
    this.live.set(ptr, size);
    this.inUse += size;
    return ptr;
  }

  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`plait: free(${ptr}): not a live block of this arena (double free?)`);
    this.live.delete(ptr);
    this.inUse -= size;
    this.insertFree(ptr, size);
  }

  /** Size of the live block at `ptr`, or undefined. */
  sizeOf(ptr: number): number | undefined {
    return this.live.get(ptr);
  }

  /**
   * Takes address space for a block of `size` bytes and returns the index of a free block that
   * fits: a new segment, or, when the limit leaves no room for one, the free block at the top of
   * this arena extended in place (if the heap can grow that segment: nothing was reserved above
   * it since). So a freed large block at the top serves any later request that fits in it plus
   * what the limit still allows. Extending only when a new segment cannot be had keeps each
   * thread's segments the same whatever order threads reserve in, so freed segments fit later
   * worlds' requests exactly.
   */
  private grow(size: number): number {
    try {
      return this.reserve(size);
    } catch (e) {
      const tail = this.free_.at(-1);
      if (!(e instanceof RangeError) || tail === undefined || tail.ptr + tail.size !== this.end) throw e;
      const more = size - tail.size;
      if (!this.source.extend?.(this.end, more)) throw e;
      tail.size = size;
      this.end += more;
      this.reserved += more;
      return this.free_.length - 1;
    }
  }

  /** Reserves a segment of at least `size` bytes (a whole SEGMENT_BYTES where the limit allows). */
  private reserve(size: number): number {
    let bytes = Math.max(size, SEGMENT_BYTES);
    let ptr: number;
    try {
      ptr = this.source.reserve(bytes);
    } catch (e) {
      if (bytes === size || !(e instanceof RangeError)) throw e;
      bytes = size; // near the limit: take only what is needed
      ptr = this.source.reserve(bytes);
    }
    this.reserved += bytes;
    this.end = Math.max(this.end, ptr + bytes);
    return this.insertFree(ptr, bytes);
  }

  /** Inserts in address order, merging with neighbours; returns the index of the result. */
  private insertFree(ptr: number, size: number): number {
    const list = this.free_;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let at = lo;
    if (at > 0 && list[at - 1].ptr + list[at - 1].size === ptr) {
      at--;
      list[at].size += size;
    } else list.splice(at, 0, { ptr, size });
    const next = list[at + 1];
    if (next && list[at].ptr + list[at].size === next.ptr) {
      list[at].size += next.size;
      list.splice(at + 1, 1);
    }
    return at;
  }
}
