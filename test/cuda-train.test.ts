// Training steps on device params without a GPU: train() with sgd (momentum) and adamw, withAMP
// 16-mixed and bf16-mixed (half compute copies cast on the device, the fused unscale + finite
// check with one flag, the skip on overflow) and withGradClip's global norm, each run on cuda:0
// of the fake device (test/cuda-fake.ts: host memory, JS kernels) and on the CPU from the same
// values. What this tests is plait's wiring: the optimizer and transform hooks reach the device
// kernels with the CPU's scalars, state lives on the device, grads are freed. The PTX kernels
// themselves run in test/gpu/run.sh on a GPU (against the same CPU runs).
import { describe, expect, it } from "vitest";
import { type Comm, shardRange } from "../src/comm/types.ts";
import {
  adamw,
  CudaTensor,
  matmul,
  relu,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  tensor,
  train,
  treeLeaves,
  valueAndGrad,
  withAMP,
  withDDP,
  withFSDP,
  withGradClip,
  withZeRO,
} from "../src/index.ts";
import type { StepLike } from "../src/step/contract.ts";
import { flatLayout, flatten, shardOf, unflattenInto } from "../src/strategy/flat.ts";
import { useFakeDevice } from "./cuda-fake.ts";
import { random, rng } from "./gemm-reference.ts";

const fake = useFakeDevice();

const t = (shape: number[], seed: number, amp = 1) => random(shape, "f32", seed, amp);

type P = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
const params = (): P => ({ w1: t([8, 16], 1), b1: t([16], 2), w2: t([16, 4], 3), b2: t([4], 4) });
const loss = (p: Tree, b: { x: Tensor; y: Tensor }) => {
  const q = p as P;
  return softmaxCrossEntropy(matmul(relu(matmul(b.x, q.w1, { bias: q.b1 })), q.w2, { bias: q.b2 }), b.y);
};

function batches(n: number, amp = 1) {
  return Array.from({ length: n }, (_, i) => ({
    x: t([6, 8], 100 + i, amp),
    y: tensor(
      Array.from({ length: 6 }, rng(200 + i)).map((v) => Math.floor(v * 4)),
      [6],
      { dtype: "i32" },
    ),
  }));
}

const onDevice = (tree: Record<string, Tensor>) =>
  Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.to("cuda:0")])) as unknown as Tree;

/** Runs the same trainer on cpu and on cuda:0 over `bs`; returns both final states' leaves as arrays, and the outs. */
async function both(make: () => ReturnType<typeof train<{ x: Tensor; y: Tensor }>>, bs: { x: Tensor; y: Tensor }[]) {
  const runs = [];
  for (const device of ["cpu", "cuda:0"] as const) {
    const trainer = make();
    const p = params();
    let state = await trainer.init(device === "cpu" ? p : onDevice(p));
    const outs = [];
    for (const b of bs) {
      const batch = device === "cpu" ? b : { x: b.x.to("cuda:0"), y: b.y.to("cuda:0") };
      const r = await trainer(state, batch as never);
      state = r.state;
      outs.push({
        loss: r.out.loss,
        skip: r.out.skip ?? false,
        lossScale: r.out.metrics?.lossScale,
        gradNorm: r.out.metrics?.gradNorm,
      });
      if (device !== "cpu") for (const x of Object.values(batch)) x.dispose();
    }
    const leaves = treeLeaves(state.params);
    const slots = treeLeaves(state.opt.slots as Tree);
    if (device !== "cpu") for (const l of [...leaves, ...slots]) expect(l).toBeInstanceOf(CudaTensor);
    runs.push({
      params: leaves.map((l) => l.toArray()),
      slots: slots.map((l) => l.toArray()),
      outs,
      free: () => {
        for (const l of [...leaves, ...slots, ...treeLeaves(p)]) if (!l.disposed) l.dispose();
      },
    });
  }
  return { cpu: runs[0], dev: runs[1] };
}

function expectClose(got: number[][], want: number[][], tol: number, what: string) {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    g.forEach((v, j) => {
      const w = want[i][j];
      expect(Math.abs(v - w), `${what} leaf ${i}[${j}]: ${v} vs ${w}`).toBeLessThanOrEqual(tol * (1 + Math.abs(w)));
    });
  });
}

describe("training on cuda:0 (fake device: plait's wiring)", () => {
  it.each([
    ["sgd with momentum and nesterov", () => sgd({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
    ["sgd with dampening", () => sgd({ lr: 0.1, momentum: 0.5, dampening: 0.1 })],
    ["adamw", () => adamw({ lr: 0.01, weightDecay: 0.05 })],
  ])("%s: four steps match the CPU run; slots live on the device", async (_, opt) => {
    const bs = batches(4);
    const { cpu, dev } = await both(() => train(valueAndGrad(loss), opt()), bs);
    expectClose(dev.params, cpu.params, 2e-6, "params");
    expectClose(dev.slots, cpu.slots, 2e-6, "slots");
    for (const [i, o] of dev.outs.entries()) expect(Math.abs(o.loss - cpu.outs[i].loss)).toBeLessThan(1e-5);
    expect(fake.kernelCalls).toContain(opt().init({}).kind === "sgd" ? "sgd" : "adam");
    cpu.free();
    dev.free();
    for (const b of bs) for (const x of Object.values(b)) x.dispose();
  });

  it.each(["16-mixed", "bf16-mixed"] as const)(
    "withAMP %s: compute copies cast on the device, the unscale with one flag; matches the CPU",
    async (precision) => {
      const bs = batches(3);
      fake.kernelCalls.length = 0;
      const { cpu, dev } = await both(() => train(withAMP(valueAndGrad(loss), { precision }), sgd({ lr: 0.1 })), bs);
      expect(fake.kernelCalls).toContain(`cast f32→${precision === "16-mixed" ? "f16" : "bf16"}`);
      if (precision === "16-mixed") {
        expect(fake.kernelCalls.filter((k) => k === "finiteFlag").length).toBe(3); // one per step
        expect(dev.outs.map((o) => o.lossScale)).toEqual(cpu.outs.map((o) => o.lossScale));
      }
      expectClose(dev.params, cpu.params, 1e-5, "params");
      cpu.free();
      dev.free();
      for (const b of bs) for (const x of Object.values(b)) x.dispose();
    },
  );

  it("16-mixed: an overflowing step is skipped on the device as on the CPU (params unchanged, scale halved)", async () => {
    const bs = [...batches(1), ...batches(1, 1e30)]; // the second batch's f16 activations overflow
    const { cpu, dev } = await both(
      () => train(withAMP(valueAndGrad(loss), { precision: "16-mixed" }), sgd({ lr: 0.1 })),
      bs,
    );
    expect(cpu.outs.map((o) => o.skip)).toEqual([false, true]);
    expect(dev.outs.map((o) => o.skip)).toEqual([false, true]);
    expect(dev.outs.map((o) => o.lossScale)).toEqual(cpu.outs.map((o) => o.lossScale));
    expectClose(dev.params, cpu.params, 1e-5, "params");
    cpu.free();
    dev.free();
    for (const b of bs) for (const x of Object.values(b)) x.dispose();
  });

  it("withGradClip (global 2-norm) on device grads clips as on the CPU and reports the same norm", async () => {
    const bs = batches(2, 4);
    const { cpu, dev } = await both(
      () => train(withGradClip(valueAndGrad(loss), { maxNorm: 0.05 }), sgd({ lr: 0.5, momentum: 0.9 })),
      bs,
    );
    dev.outs.forEach((o, i) => {
      expect(o.gradNorm).toBeGreaterThan(0.05); // the clip acted
      expect(Math.abs((o.gradNorm ?? 0) - (cpu.outs[i].gradNorm ?? 0))).toBeLessThan(
        1e-5 * (cpu.outs[i].gradNorm ?? 1),
      );
    });
    expectClose(dev.params, cpu.params, 2e-6, "params");
    cpu.free();
    dev.free();
    for (const b of bs) for (const x of Object.values(b)) x.dispose();
  });

  it("a half param on the device (true half precision) is refused by the optimizer, naming the device", async () => {
    const p = tensor([1, 2], [2], { dtype: "f16" }).to("cuda:0");
    const g = tensor([1, 1], [2], { dtype: "f16" }).to("cuda:0");
    const opt = sgd({ lr: 0.1 });
    const state = opt.init(p as never);
    expect(() => opt.update(p as never, g as never, state)).toThrow(
      /sgd\.update on cuda:0: param f16\[2\] on cuda:0 is not f32/,
    );
    for (const x of [p, g, ...treeLeaves(state.slots as Tree)]) x.dispose();
  });
});

/**
 * A world of two whose other rank is this one's twin (same params, same batch): a collective's
 * result is what it would be with identical inputs (avg, max and broadcast leave values alone,
 * allGather repeats). It records what each collective got, to check where the buckets live.
 */
function twinComm(worldSize = 2) {
  const seen: { op: string; device: string; size: number }[] = [];
  const note = (op: string, x: unknown) => {
    for (const l of treeLeaves(x as Tree)) seen.push({ op, device: l.device, size: l.size });
  };
  const comm = {
    rank: 0,
    worldSize,
    async allReduce<T>(x: T, op: string) {
      note(`allReduce ${op}`, x);
      return x;
    },
    async broadcast<T>(x: T) {
      note("broadcast", x);
      return x;
    },
    async allGather(x: Tensor) {
      note("allGather", x);
      const host = x.device === "cpu" ? x : x.to("cpu");
      const values = Array.from({ length: worldSize }, () => host.toArray()).flat();
      const out = tensor(values, [worldSize * x.size], { dtype: x.dtype });
      if (host !== x) host.dispose();
      if (x.device === "cpu") return out;
      const dev = out.to(x.device as "cuda:0");
      out.dispose();
      return dev;
    },
    async reduceScatter(x: Tensor, op: string) {
      note(`reduceScatter ${op}`, x);
      const host = x.device === "cpu" ? x : x.to("cpu");
      const { start, count } = shardRange(x.size, worldSize, 0);
      const out = tensor(host.toArray().slice(start, start + count), [count], { dtype: x.dtype });
      if (host !== x) host.dispose();
      if (x.device === "cpu") return out;
      const dev = out.to(x.device as "cuda:0");
      out.dispose();
      return dev;
    },
    async barrier() {},
  };
  return { comm: comm as unknown as Comm, seen };
}

describe("withDDP with ranks on cuda:0 (fake device, a twin rank: plait's wiring)", () => {
  it("gradients are reduced on the device (the flat bucket a device tensor), and train like one rank", async () => {
    const bs = batches(2);
    const { comm, seen } = twinComm();
    const single = await both(() => train(valueAndGrad(loss), sgd({ lr: 0.1, momentum: 0.9 })), bs);
    const twins = await both(() => train(withDDP(valueAndGrad(loss)), sgd({ lr: 0.1, momentum: 0.9 }), { comm }), bs);
    const [one, ddp] = [single.dev, twins.dev];
    // init: the layout check over CPU strings (allGather), then the device params broadcast on the device
    expect(seen.some((s) => s.op === "allGather" && s.device === "cpu")).toBe(true);
    expect(seen.filter((s) => s.op === "broadcast" && s.device === "cuda:0").length).toBe(4);
    // each step: one bucket (every leaf is small), flattened on the device: 8·16 + 16 + 16·4 + 4 elements
    const reduced = seen.filter((s) => s.op === "allReduce avg" && s.device === "cuda:0");
    expect(reduced.map((s) => s.size)).toEqual([212, 212]);
    expectClose(ddp.params, one.params, 0, "params"); // the avg of twins is the gradient itself
    for (const r of [single.cpu, single.dev, twins.cpu, twins.dev]) r.free();
    for (const b of bs) for (const x of Object.values(b)) x.dispose();
  });

  it.each([
    ["withZeRO stage 1", (st: StepLike<{ x: Tensor; y: Tensor }>) => withZeRO(st, { stage: 1 })],
    ["withZeRO stage 2", (st: StepLike<{ x: Tensor; y: Tensor }>) => withZeRO(st, { stage: 2 })],
    ["withZeRO stage 3", (st: StepLike<{ x: Tensor; y: Tensor }>) => withZeRO(st, { stage: 3 })],
    ["withFSDP", (st: StepLike<{ x: Tensor; y: Tensor }>) => withFSDP(st)],
  ])("%s: shards, flat vectors and gathered params live on the device; trains like one rank", async (_, wrap) => {
    const bs = batches(2);
    // a world of one: every flat vector is the whole (a twin cannot stand in for another rank's
    // shard); the offsets of other ranks' shards are checked against flat.ts's CPU path below
    const { comm, seen } = twinComm(1);
    const run = async (trainer: ReturnType<typeof train<{ x: Tensor; y: Tensor }>>) => {
      const p = onDevice(params());
      let state = await trainer.init(p);
      for (const b of bs) {
        const batch = { x: b.x.to("cuda:0"), y: b.y.to("cuda:0") };
        state = (await trainer(state, batch as never)).state;
        for (const x of Object.values(batch)) x.dispose();
      }
      const full = await trainer.gather(state);
      const out = treeLeaves(full).map((l) => {
        expect(l.device).toBe("cuda:0");
        return l.toArray();
      });
      for (const l of [
        ...treeLeaves(full),
        ...treeLeaves(state.params),
        ...treeLeaves(state.opt.slots as Tree),
        ...treeLeaves(p),
      ])
        if (!l.disposed) l.dispose();
      return out;
    };
    const sharded = await run(train(wrap(valueAndGrad(loss)), sgd({ lr: 0.1, momentum: 0.9 }), { comm }));
    const single = await run(train(valueAndGrad(loss), sgd({ lr: 0.1, momentum: 0.9 })));
    expectClose(sharded, single, 0, "params");
    const moved = seen.filter((s) => s.op !== "allGather" || s.size > 64); // not gatherStrings' small CPU messages
    expect(moved.length).toBeGreaterThan(0);
    for (const s of moved.filter((m) => (m.op !== "allReduce max" && m.op !== "allReduce avg" ? true : m.size > 1)))
      expect(s.device, s.op).toBe("cuda:0");
    for (const b of bs) for (const x of Object.values(b)) x.dispose();
  });

  it("flatten, shardOf and unflattenInto on the device give the CPU path's values for every rank of 3", () => {
    const cpu = [t([3, 5], 71), t([4], 72), t([2, 2], 73)];
    const dev = cpu.map((x) => x.to("cuda:0"));
    const layout = flatLayout("test", cpu, ["a", "b", "c"], 3); // 23 elements → 3 shards of 8, one padded
    const flatCpu = flatten(layout, cpu, "f32");
    const flatDev = flatten(layout, dev as never, "f32");
    expect(flatDev).toBeInstanceOf(CudaTensor);
    expect(flatDev.toArray()).toEqual(flatCpu.toArray());
    for (const rank of [0, 1, 2]) {
      const a = shardOf(layout, flatCpu, rank);
      const b = shardOf(layout, flatDev, rank);
      expect(b).toBeInstanceOf(CudaTensor);
      expect(b.toArray(), `rank ${rank}`).toEqual(a.toArray());
      for (const x of [a, b]) x.dispose();
    }
    const back = cpu.map((x) => tensor(new Array(x.size).fill(0), [...x.shape]).to("cuda:0"));
    unflattenInto(flatDev, back as never);
    expect(back.map((x) => x.toArray())).toEqual(cpu.map((x) => x.toArray()));
    for (const x of [...cpu, ...dev, ...back, flatCpu, flatDev]) x.dispose();
  });
});
