import { describe, expect, it } from "vitest";
import { HEAP_BASE } from "../src/core/layout.ts";
import { configure, runtime, tensor, zeros } from "../src/index.ts";

// Own file: the memory limit is fixed when the runtime starts, once per process.
describe("out of memory", () => {
  it("is a RangeError naming the bytes and the limit, and leaves the arena usable", () => {
    const limit = HEAP_BASE + (64 << 20);
    configure({ threads: 1, memoryLimit: limit });
    const arena = runtime().arena;
    const before = arena.bytesInUse;
    const big = zeros([8 << 20]); // 32 MiB
    expect(() => zeros([16 << 20])).toThrow(RangeError);
    expect(() => zeros([16 << 20])).toThrow(new RegExp(`${64 << 20} bytes requested.*${limit}-byte limit`));
    expect(arena.bytesInUse).toBe(before + (32 << 20));
    big.dispose();
    const again = zeros([8 << 20]); // fits again in the freed block
    expect(again.size).toBe(8 << 20);
    again.dispose();
    expect(tensor([1, 2]).toArray()).toEqual([1, 2]);
  });

  it("configure() rejects bad options and late calls", () => {
    expect(() => configure({ threads: 0 })).toThrow(/threads }\) must be a positive integer, got 0/);
    expect(() => configure({ threads: 2 })).toThrow(/before the first tensor/);
  });
});
