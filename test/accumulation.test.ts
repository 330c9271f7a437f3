import { describe, expect, it } from "vitest";
import { localComm } from "../src/comm/local.ts";
import { scope, type Tensor, tensor, treeLeaves } from "../src/index.ts";
import { withAccumulation } from "../src/step/accumulate.ts";
import type { Ctx, Step, StepFn, StepOut } from "../src/step/contract.ts";

function ctxWith(state: Readonly<Record<string, unknown>>): Ctx {
  return { rank: 0, worldSize: 1, comm: localComm(), lossScale: 1, computeDType: "f32", state };
}

/** The transforms' states `step`'s init makes (what trainer.init would hold). */
async function initState(step: Step<number[]>): Promise<Readonly<Record<string, unknown>>> {
  return (await step.init(null as never, { rank: 0, worldSize: 1, comm: localComm() })).state;
}

/** A step whose grads are the batch's values and whose loss is their sum. */
const echo: StepFn<number[]> = (_params, batch): StepOut => ({
  loss: batch.reduce((a, b) => a + b, 0),
  grads: [tensor(batch)],
});

describe("withAccumulation", () => {
  it("returns nothing for k−1 micro-batches, then the mean gradient and mean loss of the window", () =>
    scope(async () => {
      const step = withAccumulation(echo, 4);
      const batches = [
        [1, 2],
        [3, 5],
        [-4, 8],
        [0.5, 1],
      ];
      let state = await initState(step);
      const outs: StepOut[] = [];
      for (const b of batches) {
        const out = await step.run(null as never, b, ctxWith(state));
        state = { ...state, ...out.state };
        outs.push(out);
      }
      for (const out of outs.slice(0, 3)) {
        expect(out.accumulating).toBe(true);
        expect(treeLeaves(out.grads)).toEqual([]);
      }
      const last = outs[3];
      expect(last.accumulating).toBeUndefined();
      expect((last.grads as Tensor[])[0].toArray()).toEqual([0.125, 4]);
      expect(last.loss).toBe((3 + 8 + 4 + 1.5) / 4);
      // the window restarts
      const again = await step.run(null as never, [1, 1], ctxWith(state));
      expect(again.accumulating).toBe(true);
    }));

  it("is the identity for k = 1 and rejects bad k", () =>
    scope(async () => {
      const one = withAccumulation(echo, 1);
      const out = await one.run(null as never, [2, 3], ctxWith(await initState(one)));
      expect((out.grads as Tensor[])[0].toArray()).toEqual([2, 3]);
      expect(() => withAccumulation(echo, 0)).toThrow(/k must be a positive integer, got 0/);
      expect(() => withAccumulation(echo, 1.5)).toThrow(/got 1.5/);
    }));

  it("refuses grads whose structure or scale changes within a window", () =>
    scope(async () => {
      const step = withAccumulation(echo, 2);
      const state = await initState(step);
      const first = await step.run(null as never, [1, 2], ctxWith(state));
      await expect(step.run(null as never, [1, 2, 3], ctxWith({ ...state, ...first.state }))).rejects.toThrow(
        /shape|structure/,
      );
    }));
});
