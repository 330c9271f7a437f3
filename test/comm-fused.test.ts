import { describe, expect, it } from "vitest";
import { CommError } from "../src/comm/errors.ts";
import { ShmComm } from "../src/comm/shm.ts";
import { controlBytes, initControl } from "../src/comm/shm-control.ts";
import type { DType } from "../src/core/dtype.ts";
import { runtime } from "../src/core/runtime.ts";
import { scope } from "../src/core/scope.ts";
import { type Tensor, tensor } from "../src/core/tensor.ts";

// ShmComm's fused allReduce: a tree whose leaves share a dtype runs as one collective over the
// leaves in place (reduceLeaves), each rank reducing its slice of the leaves taken end to end.
// The reference is the per-leaf call (one allReduce per tensor, the path test/comm-shm.test.ts
// checks against exact rank-ordered and float64 arithmetic): the fused call must give the same
// bits. Every rank's communicator runs in this one thread (see test/comm-faults.test.ts).

function world(n: number, smallBytes = 0): ShmComm[] {
  const { arena, memory } = runtime();
  const base = arena.alloc(controlBytes(n, smallBytes));
  initControl(memory, base, n, smallBytes);
  return Array.from({ length: n }, (_, r) => new ShmComm(memory, base, r, { timeoutMs: 20_000 }));
}

/** Deterministic values in [-8, 8) with a fraction, different per rank, leaf and element. */
function values(rank: number, leaf: number, n: number): number[] {
  let s = (rank + 1) * 7919 + leaf * 104729;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return ((s >>> 8) / 2 ** 24) * 16 - 8;
  });
}

// leaf sizes that cut every rank's slice mid-leaf (slices are multiples of 16 elements), with a
// leaf of 1 element and one large enough for the kernels' 2048-element blocks
const SIZES = [5, 1000, 1, 37, 3001, 16];

const leavesOf = (rank: number, dtype: DType, sizes = SIZES): Tensor[] =>
  sizes.map((n, j) => tensor(values(rank, j, n), [n], { dtype }));

const bitsOf = (t: Tensor) => Array.from(new Uint8Array(t.data().buffer, t.data().byteOffset, t.byteLength));

describe("ShmComm: fused allReduce of a tree's leaves", () => {
  for (const n of [2, 3]) {
    it(`${n} ranks: the same bits as one call per leaf, for f32, f64, f16 and bf16, every op`, () =>
      scope(async () => {
        const comms = world(n);
        expect(comms[0].fusesLeaves).toBe(true);
        for (const dtype of ["f32", "f64", "f16", "bf16"] as const) {
          for (const op of ["sum", "avg", "min", "max"] as const) {
            const fused = comms.map((_, r) => leavesOf(r, dtype));
            const single = comms.map((_, r) => leavesOf(r, dtype));
            // a tree (an object holding an array), as a gradient tree would be
            await Promise.all(comms.map((c, r) => c.allReduce({ w: fused[r] }, op)));
            await Promise.all(
              comms.map(async (c, r) => {
                for (const t of single[r]) await c.allReduce(t, op);
              }),
            );
            for (let r = 0; r < n; r++) {
              for (let j = 0; j < SIZES.length; j++) {
                expect(bitsOf(fused[r][j]), `${dtype} ${op} rank ${r} leaf ${j}`).toEqual(bitsOf(single[0][j]));
              }
            }
            // and the per-leaf call is right: spot-check a sum against float64 within f32 rounding
            if (dtype === "f32" && op === "sum") {
              const want = values(0, 1, 1000).map((_, i) => comms.reduce((a, __, r) => a + values(r, 1, 1000)[i], 0));
              const got = fused[1][1].toArray();
              for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5 * n * 8);
            }
          }
        }
      }));
  }

  it("a tree of mixed dtypes, or one at most the staging size, goes leaf by leaf, with the same results", () =>
    scope(async () => {
      const comms = world(2, 64 * 1024);
      const a = comms.map((_, r) => [...leavesOf(r, "f32", [5, 7]), ...leavesOf(r, "f64", [3])]);
      await Promise.all(comms.map((c, r) => c.allReduce(a[r], "sum")));
      const want = [5, 7].map((m, j) => values(0, j, m).map((v, i) => v + values(1, j, m)[i]));
      for (let j = 0; j < 2; j++) {
        const got = a[0][j].toArray();
        for (const [i, w] of want[j].entries()) expect(Math.abs(got[i] - w)).toBeLessThan(1e-5);
        expect(bitsOf(a[1][j])).toEqual(bitsOf(a[0][j]));
      }
    }));

  it("ranks whose leaves split the same total differently fail with a mismatch, naming the call", () =>
    scope(async () => {
      const comms = world(2);
      const calls = [
        comms[0].allReduce(leavesOf(0, "f32", [5, 1000]), "sum"),
        comms[1].allReduce(leavesOf(1, "f32", [1000, 5]), "sum"),
      ];
      const errors = await Promise.all(
        calls.map((p) =>
          p.then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
      for (const error of errors) {
        expect(error).toBeInstanceOf(CommError);
        expect((error as CommError).reason).toBe("mismatch");
        expect((error as CommError).message).toContain("ranks called different collectives at call #1");
      }
    }));
});
