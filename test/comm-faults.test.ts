import { describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { ShmComm } from "../src/comm/shm.ts";
import { controlBytes, initControl } from "../src/comm/shm-control.ts";
import { runtime } from "../src/core/runtime.ts";
import { scope } from "../src/core/scope.ts";
import { type Tensor, tensor } from "../src/core/tensor.ts";

// Fault handling of the shm protocol, with every rank's communicator in this one thread: the
// protocol only needs shared memory and async waits, so the ranks interleave on the event loop
// and each failure can be timed exactly. test/launch-faults.test.ts does the same with workers.

function world(n: number, timeoutMs?: number): ShmComm[] {
  const { arena, memory } = runtime();
  const base = arena.alloc(controlBytes(n));
  initControl(memory, base, n);
  return Array.from({ length: n }, (_, r) => new ShmComm(memory, base, r, { timeoutMs }));
}

const ones = (n: number, dtype: "f32" | "f64" = "f32") => tensor(new Array(n).fill(1), [n], { dtype });

/** Settles `p` and returns its error (failing the test if it resolves), with the time it took. */
async function rejection(p: Promise<unknown>): Promise<{ error: CommError; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(CommError);
    return { error: error as CommError, ms: performance.now() - t0 };
  }
  throw new Error("expected a rejection");
}

describe("shm faults, ranks in one thread", () => {
  it("a rank that fails makes pending and later collectives reject, naming it and its error", () =>
    scope(async () => {
      const [c0, c1, c2] = world(3);
      const pending = [c0.allReduce(ones(10_000), "sum"), c2.allReduce(ones(10_000), "sum")].map(rejection);
      setTimeout(() => c1.fail(new RangeError("boom on rank 1")), 20);
      for (const { error, ms } of await Promise.all(pending)) {
        expect(error.message).toBe("plait: allReduce: rank 1 failed: RangeError: boom on rank 1");
        expect(error.reason).toBe("failed");
        expect(error.failedRank).toBe(1);
        expect(ms).toBeLessThan(2000);
      }
      // a later call rejects before it waits at all: far below any timeout, whatever the load
      const later = await rejection(c0.barrier({ timeoutMs: 60_000 }));
      expect(later.error.message).toBe("plait: barrier: rank 1 failed: RangeError: boom on rank 1");
      expect(later.ms).toBeLessThan(2000);
    }));

  it("a timeout names the ranks that did not arrive as the failure, and fails the world", () =>
    scope(async () => {
      const [c0, c1, c2, c3] = world(4);
      const [r0, r1] = await Promise.all([
        rejection(c0.allReduce(ones(100), "max", { timeoutMs: 200 })),
        rejection(c1.allReduce(ones(100), "max", { timeoutMs: 60_000 })),
      ]);
      expect(r0.error.reason).toBe("timeout");
      expect(r0.error.message).toBe(
        "plait: allReduce: ranks 2, 3 did not arrive in allReduce (call #1): rank 0 timed out after 200 ms",
      );
      expect(r0.error.failedRank).toBe(2); // the first rank that did not come, not rank 0 that waited
      expect(r0.ms).toBeGreaterThanOrEqual(190);
      expect(r0.ms).toBeLessThan(5000); // the deadline is what matters; the margin is for a busy machine
      expect(r1.error.message).toBe(r0.error.message); // rank 1 stops with the same fault
      expect(r1.error.failedRank).toBe(2);
      const late = await rejection(c2.allReduce(ones(100), "max"));
      expect([late.error.reason, late.error.failedRank]).toEqual(["timeout", 2]);
      expect((await rejection(c3.barrier())).error.message).toBe(
        "plait: barrier: ranks 2, 3 did not arrive in allReduce (call #1): rank 0 timed out after 200 ms",
      );
    }));

  it("the communicator's default timeout applies when a call sets none", () =>
    scope(async () => {
      const [c0] = world(2, 100);
      const { error, ms } = await rejection(c0.barrier());
      expect(error.message).toBe(
        "plait: barrier: rank 1 did not arrive in barrier (call #1): rank 0 timed out after 100 ms",
      );
      expect(error.failedRank).toBe(1);
      expect(ms).toBeLessThan(5000);
    }));

  it("an AbortSignal stops a waiting call and fails the world; an already-aborted one does not", () =>
    scope(async () => {
      const [c0, c1] = world(2);
      const before = await rejection(c0.allReduce(ones(5), "sum", { signal: AbortSignal.abort("not now") }));
      expect(before.error.reason).toBe("aborted");
      expect(before.error.message).toBe("plait: allReduce: aborted: not now");
      const x = ones(5);
      const y = ones(5);
      await Promise.all([c0.allReduce(x, "sum"), c1.allReduce(y, "sum")]); // still usable
      expect(x.toArray()).toEqual([2, 2, 2, 2, 2]);

      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("user stop")), 30);
      const during = await rejection(c0.allReduce(ones(5), "sum", { signal: ac.signal }));
      expect(during.error.reason).toBe("aborted");
      expect(during.error.message).toBe("plait: allReduce: rank 0 aborted allReduce (call #2): Error: user stop");
      expect(during.ms).toBeLessThan(2000);
      const peer = await rejection(c1.allReduce(ones(5), "sum"));
      expect(peer.error.message).toBe(during.error.message);
    }));

  it("a rank that ended makes a peer waiting for it fail at once", () =>
    scope(async () => {
      const [c0, c1] = world(2);
      const p = rejection(c0.broadcast(ones(3), 0));
      setTimeout(() => c1.end(), 20);
      const { error, ms } = await p;
      expect(error.reason).toBe("ended");
      expect(error.failedRank).toBe(1);
      expect(error.message).toBe("plait: broadcast: rank 1 ended without calling broadcast (call #1)");
      expect(ms).toBeLessThan(2000);
    }));

  describe("mismatched calls are detected and named on every rank", () => {
    const cases: [string, (c: ShmComm, r: number) => Promise<unknown>, string, string][] = [
      ["sizes", (c, r) => c.allReduce(ones(8 + r), "sum"), 'allReduce(f32[8], "sum")', 'allReduce(f32[9], "sum")'],
      [
        "sizes on the large path",
        (c, r) => c.allReduce(ones(100_000 + r), "sum"),
        'allReduce(f32[100000], "sum")',
        'allReduce(f32[100001], "sum")',
      ],
      ["dtypes", (c, r) => c.allReduce(ones(8, r ? "f64" : "f32"), "sum"), "f32[8]", 'allReduce(f64[8], "sum")'],
      ["ops", (c, r) => c.allReduce(ones(8), r ? "max" : "sum"), '"sum"', 'allReduce(f32[8], "max")'],
      [
        "collectives",
        (c, r) => (r ? c.broadcast(ones(8), 0) : c.allReduce(ones(8), "sum")),
        "allReduce",
        "broadcast(f32[8], root 0)",
      ],
      ["roots", (c, r) => c.broadcast(ones(8), r), "broadcast(f32[8], root 0)", "broadcast(f32[8], root 1)"],
      [
        "a barrier against a gather",
        (c, r) => (r ? c.allGather(ones(2)) : c.barrier()),
        "barrier()",
        "allGather(f32[2])",
      ],
      [
        "tree structures",
        (c, r) => c.allReduce(r ? { a: ones(2), b: ones(3) } : [ones(2), ones(3)], "sum"),
        "on leaf 0 of 2 (tree #",
        'rank 1 allReduce(f32[2], "sum") on leaf 0 of 2',
      ],
    ];
    for (const [what, call, a, b] of cases) {
      it(what, () =>
        scope(async () => {
          const comms = world(2);
          const results = await Promise.all(comms.map((c, r) => rejection(call(c, r))));
          for (const { error } of results) {
            expect(error.reason).toBe("mismatch");
            expect(error.message).toMatch(/^plait: \w+: ranks called different collectives at call #1: rank 0 /);
            expect(error.message).toContain(a);
            expect(error.message).toContain(b);
          }
          const tail = (e: Error) => e.message.replace(/^plait: \w+: /, "");
          expect(tail(results[0].error)).toBe(tail(results[1].error)); // one fault, named per call
        }),
      );
    }
  });

  it("calls started without waiting run one at a time, in order", () =>
    scope(async () => {
      const [c0, c1] = world(2);
      const xs = [0, 1].map((r) => [tensor([r + 1]), ones(50_000), tensor([10 * (r + 1)])] as Tensor[]);
      const run = (c: ShmComm, [a, b, d]: Tensor[]) =>
        Promise.all([c.allReduce(a, "sum"), c.allReduce(b, "avg"), c.broadcast(d, 1), c.barrier()]);
      await Promise.all([run(c0, xs[0]), run(c1, xs[1])]);
      for (const [a, b, d] of xs) {
        expect(a.toArray()).toEqual([3]);
        expect(b.toArray().every((v) => v === 1)).toBe(true);
        expect(d.toArray()).toEqual([20]);
      }
    }));
});
