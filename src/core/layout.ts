/**
 * The one place that fixes where things live in plait's shared `WebAssembly.Memory`.
 * The kernel build (scripts/build-kernels.mjs) reads these numbers and checks that
 * each toolchain's static data stays inside its own region.
 *
 *   [0, 1 KiB)            control words (allocator bump, locks, stack-slot bitmap)
 *   [1 KiB, 64 KiB)       emscripten static data (C kernels; GLOBAL_BASE = 1 KiB)
 *   [64 KiB, 128 KiB)     AssemblyScript static data (--memoryBase 64 KiB)
 *   [128 KiB, 132 KiB)    per stack slot: its parent slot and a release generation
 *   [132 KiB, 196 KiB)    the heap's segment table (address, size, owning stack slot)
 *   [1 MiB, 17 MiB)       256 per-thread stacks of 64 KiB for C kernel instances
 *   [17 MiB, ...)         heap: tensors, owned by the TypeScript arena(s)
 */
export const PAGE_BYTES = 65536;
export const CONTROL_BASE = 0;
export const C_DATA_BASE = 1024;
export const C_DATA_END = 64 * 1024;
export const AS_DATA_BASE = 64 * 1024;
export const AS_DATA_END = 128 * 1024;
export const STACKS_BASE = 1 << 20;
export const STACK_SLOT_BYTES = 64 * 1024;
export const STACK_SLOTS = 256;
export const HEAP_BASE = STACKS_BASE + STACK_SLOTS * STACK_SLOT_BYTES;
/**
 * Two int32 per stack slot: 1 + the slot of the thread that started it (0: none, or slot free),
 * and a generation bumped each time the slot is released (a thread that finds its own slot's
 * generation changed has been given up on and must stop touching memory).
 */
export const THREADS_BASE = 128 * 1024;
/** Segment table entries: four int32 each (address, bytes, 1 + owner slot or 0 when free, unused). */
export const SEGMENTS_BASE = 132 * 1024;
export const SEGMENT_ENTRIES = 4096;
/** Pages the memory starts with: the fixed regions plus 15 MiB of heap. */
export const INITIAL_PAGES = (HEAP_BASE + (15 << 20)) / PAGE_BYTES;
/** wasm32's limit: 65,536 pages = 4 GiB. */
export const MAXIMUM_PAGES = 65536;

/** Int32 indices of the control words (byte offset = 4 × index). */
export const CTRL = {
  /** end of the heap's segments: the next segment that reuses none starts here */
  heapTop: 1,
  /** lock around the segment table, heapTop and `memory.grow` */
  segmentLock: 2,
  /** entries in use in the segment table */
  segmentCount: 3,
  /** bitmap of used stack slots: STACK_SLOTS / 32 words */
  stackBitmap: 8,
} as const;

/** Every tensor buffer starts on a 64-byte boundary (one cache line, four v128). */
export const ALIGN = 64;
