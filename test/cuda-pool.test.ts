// The caching allocator of device memory (ffi/cuda/pool.ts) without a GPU: its malloc and free are
// stand-ins that record calls, so what is checked is the bookkeeping: rounding, reuse of a freed
// block for the next request of its size (per device), the retry after giving the cache back when
// malloc fails, and refusing a pointer it never handed out.
import { describe, expect, it } from "vitest";
import { BlockPool, roundBlock } from "../ffi/cuda/pool.ts";

function pool(opts: { capacity?: number } = {}) {
  const calls: string[] = [];
  let next = 0x1000n;
  let used = 0;
  const sizes = new Map<bigint, number>();
  const p = new BlockPool(
    (device, bytes) => {
      if (used + bytes > (opts.capacity ?? Number.POSITIVE_INFINITY)) {
        calls.push(`malloc ${device} ${bytes} → out of memory`);
        throw new Error("cudaMalloc returned 2 (cudaErrorMemoryAllocation)");
      }
      calls.push(`malloc ${device} ${bytes}`);
      used += bytes;
      const ptr = next;
      next += BigInt(bytes);
      sizes.set(ptr, bytes);
      return ptr;
    },
    (device, ptr) => {
      calls.push(`free ${device} ${ptr}`);
      used -= sizes.get(ptr) ?? 0;
    },
  );
  return { p, calls };
}

describe("device memory pool", () => {
  it("rounds to 512-byte steps up to 1 MiB, then 2 MiB steps", () => {
    expect([1, 512, 513, 1 << 20, (1 << 20) + 1, 5 << 20].map(roundBlock)).toEqual([
      512,
      512,
      1024,
      1 << 20,
      2 << 20,
      6 << 20,
    ]);
  });

  it("reuses a disposed block for the next request of its rounded size on its device, without cudaFree", () => {
    const { p, calls } = pool();
    const a = p.alloc(0, 100, "a");
    p.dispose(0, a);
    expect(p.cachedBytes(0)).toBe(512);
    expect(p.alloc(0, 400, "b")).toBe(a); // same rounded size
    expect(p.cachedBytes(0)).toBe(0);
    const c = p.alloc(1, 100, "c"); // another device: a new block
    expect(c).not.toBe(a);
    const d = p.alloc(0, 600, "d"); // another size: a new block
    expect(d).not.toBe(a);
    expect(calls).toEqual(["malloc 0 512", "malloc 1 512", "malloc 0 1024"]);
  });

  it("out of memory with blocks cached: gives them back (cudaFree) and retries once; else the error", () => {
    const { p, calls } = pool({ capacity: 2048 });
    const a = p.alloc(0, 1024, "a");
    const b = p.alloc(0, 512, "b");
    p.dispose(0, a);
    p.dispose(0, b);
    const c = p.alloc(0, 2048, "c");
    expect(calls).toEqual([
      "malloc 0 1024",
      "malloc 0 512",
      "malloc 0 2048 → out of memory",
      `free 0 ${a}`,
      `free 0 ${b}`,
      "malloc 0 2048",
    ]);
    expect(p.cachedBytes(0)).toBe(0);
    expect(() => p.alloc(0, 512, "d")).toThrow(/cudaErrorMemoryAllocation/);
    p.dispose(0, c);
  });

  it("refuses a pointer it never handed out, or one from another device", () => {
    const { p } = pool();
    expect(() => p.dispose(0, 0x99n)).toThrow(/was not allocated by plait's pool/);
    const a = p.alloc(0, 8, "a");
    expect(() => p.dispose(1, a)).toThrow(/on cuda:1 was not allocated/);
  });

  it("emptyCache(device) frees only that device's cached blocks", () => {
    const { p, calls } = pool();
    const [a, b] = [p.alloc(0, 8, "a"), p.alloc(1, 8, "b")];
    p.dispose(0, a);
    p.dispose(1, b);
    p.emptyCache(1);
    expect(calls.at(-1)).toBe(`free 1 ${b}`);
    expect([p.cachedBytes(0), p.cachedBytes(1)]).toEqual([512, 0]);
  });
});
