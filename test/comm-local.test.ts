import { describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { localComm } from "../src/comm/local.ts";
import { ShmComm } from "../src/comm/shm.ts";
import { controlBytes, initControl } from "../src/comm/shm-control.ts";
import { shardRange } from "../src/comm/types.ts";
import { runtime } from "../src/core/runtime.ts";
import { scope } from "../src/core/scope.ts";
import { type Tensor, tensor } from "../src/core/tensor.ts";

// The world-size-1 communicator, and the argument checks every backend shares.

const bits = (t: Tensor) => Array.from(new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength));
const edges = [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e-40, 3.4e38, -1.5, 0.1];

describe("localComm", () => {
  const comm = localComm();

  it("is rank 0 of 1; allReduce and broadcast leave x as it is and resolve to it", () =>
    scope(async () => {
      expect([comm.rank, comm.worldSize]).toEqual([0, 1]);
      for (const dtype of ["f64", "f32", "f16", "bf16"] as const) {
        for (const op of ["sum", "avg", "min", "max"] as const) {
          const x = tensor(edges, [edges.length], { dtype });
          const before = bits(x);
          expect(await comm.allReduce(x, op)).toBe(x);
          expect(bits(x)).toEqual(before);
        }
      }
      const tree = { w: tensor([1, 2]), b: [tensor([3], [1], { dtype: "i32" })] };
      expect(await comm.allReduce(tree, "max")).toBe(tree);
      expect(await comm.broadcast(tree, 0)).toBe(tree);
      expect(tree.w.toArray()).toEqual([1, 2]);
      await comm.barrier();
    }));

  it("allGather and reduceScatter return a new 1-D copy", () =>
    scope(async () => {
      const x = tensor([[1, 2, 3]]);
      for (const out of [await comm.allGather(x), await comm.reduceScatter(x, "sum")]) {
        expect(out).not.toBe(x);
        expect(out.shape).toEqual([3]);
        expect(out.toArray()).toEqual([1, 2, 3]);
      }
    }));
});

function shmRank0(): ShmComm {
  const { arena, memory } = runtime();
  const base = arena.alloc(controlBytes(2));
  initControl(memory, base, 2);
  return new ShmComm(memory, base, 0);
}

describe("argument checks (every backend)", () => {
  for (const [name, make] of [
    ["local", localComm],
    ["shm", shmRank0],
  ] as const) {
    it(`${name}: names the op, the argument, what was expected and what came`, () =>
      scope(async () => {
        const comm = make();
        const x = tensor([1, 2]);
        const worldSize = comm.worldSize;
        await expect(comm.allReduce(x, "prod" as any)).rejects.toThrow(
          'plait: allReduce: argument op must be one of "sum", "avg", "min", "max", got "prod"',
        );
        await expect(comm.allReduce(tensor([1], [1], { dtype: "u8" }), "sum")).rejects.toThrow(
          "plait: allReduce: argument x has dtype u8, expected one of f64, f32, f16, bf16, i32",
        );
        await expect(comm.reduceScatter(tensor([1], [1], { dtype: "i32" }), "avg")).rejects.toThrow(
          'plait: reduceScatter: op "avg" needs a float dtype, argument x is i32 (use "sum")',
        );
        await expect(comm.allReduce([x, 5] as any, "sum")).rejects.toThrow(
          "plait: allReduce: argument x must be a Tensor or a tree of Tensors: plait: tree[1] is not a tensor",
        );
        await expect(comm.allGather([1, 2] as any)).rejects.toThrow(
          "plait: allGather: argument x must be a Tensor, got an array",
        );
        await expect(comm.broadcast(x, worldSize)).rejects.toThrow(
          `plait: broadcast: argument root must be an integer rank in [0, ${worldSize - 1}], got ${worldSize}`,
        );
        await expect(comm.barrier({ timeoutMs: 0 })).rejects.toThrow(
          "plait: barrier: option timeoutMs must be a number of milliseconds in (0, 2^31), got 0",
        );
        await expect(comm.barrier({ signal: "stop" as any })).rejects.toThrow(
          'plait: barrier: option signal must be an AbortSignal, got string "stop"',
        );
        // an unknown key (a typo) is refused by name, never ignored
        await expect(comm.barrier({ timeout: 5 } as any)).rejects.toThrow(
          "plait: barrier: unknown option timeout; known: timeoutMs, signal",
        );
        await expect(comm.allReduce(x, "sum", { timeoutMs: 100, singal: undefined } as any)).rejects.toThrow(
          "plait: allReduce: unknown option singal; known: timeoutMs, signal",
        );
        await expect(comm.broadcast(x, 0, null as any)).rejects.toThrow(
          "plait: broadcast: options must be an object, got null",
        );
        const aborted = comm.allReduce(x, "sum", { signal: AbortSignal.abort(new Error("stop")) });
        await expect(aborted).rejects.toBeInstanceOf(CommError);
        await expect(aborted).rejects.toThrow("plait: allReduce: aborted: Error: stop");
        const gone = tensor([1]);
        gone.dispose();
        await expect(comm.allReduce(gone, "sum")).rejects.toThrow(
          "plait: allReduce: argument x (f32[1]) was used after dispose()",
        );
      }));
  }
});

describe("shardRange", () => {
  it("splits n into contiguous shards in rank order, the first n mod worldSize one larger", () => {
    for (const n of [0, 1, 3, 17, 1023, 1024]) {
      for (const worldSize of [1, 2, 3, 4, 7]) {
        const shards = Array.from({ length: worldSize }, (_, r) => shardRange(n, worldSize, r));
        let next = 0;
        for (const [r, { start, count }] of shards.entries()) {
          expect(start).toBe(next);
          expect(count).toBe(Math.floor(n / worldSize) + (r < n % worldSize ? 1 : 0));
          next += count;
        }
        expect(next).toBe(n);
      }
    }
  });
});

describe("ShmComm options", () => {
  it("refuses unknown keys by name", () => {
    const { arena, memory } = runtime();
    const base = arena.alloc(controlBytes(2));
    initControl(memory, base, 2);
    expect(() => new ShmComm(memory, base, 0, { spin: 1 } as any)).toThrow(
      "plait: ShmComm: unknown option spin; known: timeoutMs, spinMs",
    );
    expect(() => new ShmComm(memory, base, 0, { timeoutMs: -1 })).toThrow(
      "plait: ShmComm: option timeoutMs must be a number of milliseconds in (0, 2^31), got -1",
    );
    arena.free(base);
  });
});
