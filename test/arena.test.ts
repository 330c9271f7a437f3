import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Arena, type SegmentSource } from "../src/core/arena.ts";
import { SharedHeap } from "../src/core/heap.ts";
import { ALIGN, HEAP_BASE, PAGE_BYTES } from "../src/core/layout.ts";

/** A fixed region [base, base + size) handed out like the shared heap does. */
function region(base: number, size: number): SegmentSource & { top: number } {
  return {
    top: base,
    reserve(bytes: number) {
      if (this.top + bytes > base + size) {
        throw new RangeError(`out of memory: ${bytes} bytes requested, limit ${base + size}`);
      }
      const p = this.top;
      this.top += bytes;
      return p;
    },
    extend(end: number, bytes: number) {
      if (end !== this.top || this.top + bytes > base + size) return false;
      this.top += bytes;
      return true;
    },
  };
}

describe("Arena", () => {
  it("hands out aligned, non-overlapping blocks and reuses freed ones", () => {
    const arena = new Arena(region(1 << 20, 64 << 20));
    const a = arena.alloc(100);
    const b = arena.alloc(0);
    const c = arena.alloc(ALIGN * 3 + 1);
    for (const p of [a, b, c]) expect(p % ALIGN).toBe(0);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(b).toBeGreaterThanOrEqual(a + 100);
    expect(arena.bytesInUse).toBe(2 * ALIGN + ALIGN + 4 * ALIGN);
    arena.free(b);
    expect(arena.alloc(10)).toBe(b);
    arena.free(a);
    arena.free(c);
  });

  it("merges neighbours so a freed run serves a larger request", () => {
    const arena = new Arena(region(0, 64 << 20));
    const blocks = Array.from({ length: 8 }, () => arena.alloc(ALIGN));
    for (const p of blocks.slice(2, 6)) arena.free(p);
    expect(arena.alloc(4 * ALIGN)).toBe(blocks[2]);
  });

  it("rejects double free and foreign pointers without changing its state", () => {
    const arena = new Arena(region(0, 64 << 20));
    const p = arena.alloc(8);
    arena.free(p);
    expect(() => arena.free(p)).toThrow(/not a live block.*double free/);
    expect(() => arena.free(12345)).toThrow(/not a live block/);
    expect(arena.bytesInUse).toBe(0);
  });

  it("rejects bad sizes", () => {
    const arena = new Arena(region(0, 1 << 20));
    expect(() => arena.alloc(-1)).toThrow(/non-negative integer, got -1/);
    expect(() => arena.alloc(1.5)).toThrow(/got 1.5/);
  });

  it("throws a RangeError naming the bytes on exhaustion and stays usable", () => {
    const arena = new Arena(region(0, 1 << 20));
    const a = arena.alloc(600_000);
    expect(() => arena.alloc(600_000)).toThrow(RangeError);
    expect(() => arena.alloc(600_000)).toThrow(/600000 bytes requested/);
    expect(arena.bytesInUse).toBe(Math.ceil(600_000 / ALIGN) * ALIGN);
    arena.free(a);
    const b = arena.alloc(600_000);
    expect(b).toBe(a);
  });

  it("serves a smaller request from a freed large block without reserving more", () => {
    const arena = new Arena(region(0, 256 << 20));
    const small = arena.alloc(1000);
    const large = arena.alloc(40 << 20); // past the 16 MiB segment: a segment of its own
    const reserved = arena.bytesReserved;
    arena.free(large);
    for (const bytes of [20 << 20, (40 << 20) - 100, 17 << 20]) {
      const p = arena.alloc(bytes);
      expect(p).toBe(large);
      expect(arena.bytesReserved).toBe(reserved);
      arena.free(p);
    }
    arena.free(small);
    expect(arena.bytesInUse).toBe(0);
  });

  it("extends a freed block at its top when a larger request fits under the limit", () => {
    // 64 MiB in all: 32 MiB freed at the top leaves room for 48 MiB only if that block is reused.
    const arena = new Arena(region(0, 64 << 20));
    const big = arena.alloc(32 << 20);
    arena.free(big);
    const bigger = arena.alloc(48 << 20);
    expect(bigger).toBe(big);
    expect(arena.bytesReserved).toBe(48 << 20);
    arena.free(bigger);
    expect(arena.alloc(64 << 20)).toBe(big); // the whole region, in one block
  });

  it("extends through the shared heap near its limit, and never over another arena's segment", () => {
    const limit = HEAP_BASE + (80 << 20);
    const memory = new WebAssembly.Memory({
      initial: HEAP_BASE / PAGE_BYTES,
      maximum: limit / PAGE_BYTES,
      shared: true,
    });
    const a = new Arena(new SharedHeap(memory, limit, 0));
    const other = new Arena(new SharedHeap(memory, limit, 1));
    const p = a.alloc(32 << 20);
    a.free(p);
    const q = a.alloc(60 << 20); // a new 60 MiB segment would pass the limit: the free 32 grow by 28
    expect(q).toBe(p);
    expect(a.bytesReserved).toBe(60 << 20);
    a.free(q);
    const o = other.alloc(1); // the 16 MiB above now belong to the other arena
    expect(o).toBe(p + (60 << 20));
    // growing a's block in place would overlap o, and a new segment does not fit: out of memory
    expect(() => a.alloc(64 << 20)).toThrow(RangeError);
    expect(a.alloc(60 << 20)).toBe(p); // a's own block is still whole
    other.free(o);
  });

  it("takes new segments, not extensions, while the limit allows (the same segments in any thread order)", () => {
    const arena = new Arena(region(0, 256 << 20));
    const big = arena.alloc(32 << 20);
    arena.free(big);
    const bigger = arena.alloc(48 << 20);
    expect(arena.bytesReserved).toBe(80 << 20); // a whole new segment, not the 16 MiB an extension takes
    expect(bigger).toBe(big); // (adjacent free segments merge into one block)
  });

  it("never overlaps live blocks under random alloc/free sequences", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 300_000 }), fc.constant(-1)), { maxLength: 200 }),
        fc.integer(),
        (ops, seed) => {
          const arena = new Arena(region(4096, 256 << 20));
          const live: { p: number; n: number }[] = [];
          let s = seed;
          for (const op of ops) {
            if (op < 0 && live.length) {
              s = (s * 1103515245 + 12345) & 0x7fffffff;
              const [gone] = live.splice(s % live.length, 1);
              arena.free(gone.p);
            } else if (op >= 0) live.push({ p: arena.alloc(op), n: Math.max(op, 1) });
          }
          const sorted = [...live].sort((x, y) => x.p - y.p);
          for (let i = 1; i < sorted.length; i++)
            expect(sorted[i].p).toBeGreaterThanOrEqual(sorted[i - 1].p + sorted[i - 1].n);
          for (const { p } of live) expect(p % ALIGN).toBe(0);
          for (const { p } of live) arena.free(p);
          expect(arena.bytesInUse).toBe(0);
        },
      ),
    );
  });
});
