import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  arrayDataset,
  type Callback,
  chartLogger,
  csvLogger,
  earlyStopping,
  load,
  loader,
  lrMonitor,
  mlp,
  modelCheckpoint,
  Rng,
  fit as runFit,
  type StepFn,
  sgd,
  softmaxCrossEntropy,
  type Tensor,
  type Tree,
  tensor,
  train,
  treeMap,
  valueAndGrad,
  zeros,
} from "../src/index.ts";

// Two Gaussian blobs in 4-D, labelled 0 and 1.
const rng = new Rng(7);
const samples = Array.from({ length: 48 }, (_, i) => {
  const y = i % 2;
  return { x: Float32Array.from({ length: 4 }, () => (y ? 1 : -1) + 0.5 * rng.normal()), y };
});
type B = { x: Tensor; y: Tensor };
const model = mlp([4, 8, 2]);
const lossOf = (p: Tree, b: B) => softmaxCrossEntropy(model.apply(p, b.x), b.y);
const quiet = { log: "none" as const };
const tensorOf = (x: Float32Array) => tensor(x, [1, x.length]);
const tmp = () => mkdtempSync(join(tmpdir(), "plait-fit-"));

async function setup(lr = 0.1) {
  const trainer = train(valueAndGrad(lossOf), sgd({ lr }));
  const state = await trainer.init(model.init(new Rng(1)) as unknown as Tree);
  return { trainer, state, data: loader(arrayDataset(samples), { batchSize: 8, seed: 3 }) };
}

/** A trainer whose step does nothing (zero grads): for the callbacks, driven by a synthetic metric. */
async function idle(batches = 2) {
  const step: StepFn<Tensor> = (params) => ({ loss: 1, grads: treeMap((t: Tensor) => zeros(t.shape), params) });
  const trainer = train(step, sgd({ lr: 0.1 }));
  const state = await trainer.init({ w: zeros([2]) });
  const data = loader(arrayDataset(Array.from({ length: batches }, (_, i) => i)), { batchSize: 1 });
  return { trainer, state, train: data };
}

/** Logs `seq[epoch - 1]` as "score" after every epoch. */
const logs =
  (seq: readonly number[], name = "score") =>
  ({ epoch, log }: { epoch: number; log: (n: string, v: number) => void }) =>
    log(name, seq[epoch - 1]);

describe("fit", () => {
  it("trains, validates each epoch, and the CSV has one row per epoch with the logged values", async () => {
    const { trainer, state, data } = await setup();
    const dir = tmp();
    const val = loader(arrayDataset(samples.slice(0, 20)), { batchSize: 6, shuffle: false });
    const accuracy = (params: Tree, b: B) => {
      const logits = model.apply(params, b.x).toArray();
      const y = b.y.toArray();
      let hits = 0;
      for (let r = 0; r < y.length; r++) hits += Number((logits[2 * r + 1] > logits[2 * r] ? 1 : 0) === y[r]);
      return { valAcc: hits / y.length, valLoss: lossOf(params, b).toArray()[0] };
    };
    const late: Callback<null> = {
      name: "late",
      init: () => null,
      log: (_s, e) => (e.epoch >= 2 ? e.log("late", e.epoch * 10, { reduce: "sum" }) : undefined),
    };
    const r = await runFit({
      trainer,
      state,
      train: data,
      validate: { data: val, metrics: accuracy },
      epochs: 3,
      callbacks: [late, csvLogger({ dir }), chartLogger({ dir })],
      ...quiet,
    });
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(r.history[2].loss).toBeLessThan(r.history[0].loss);
    expect(r.history[2].metrics.valAcc).toBeGreaterThan(0.9);
    const csv = readFileSync(join(dir, "metrics.csv"), "utf8").trimEnd().split("\n");
    expect(csv[0]).toBe("epoch,step,loss,valAcc,valLoss,late");
    expect(csv).toHaveLength(4);
    r.history.forEach((h, i) => {
      const m = h.metrics;
      const late = i === 0 ? "" : String((i + 1) * 10);
      expect(csv[i + 1]).toBe(
        [h.epoch, 6 * (i + 1), h.loss, m.valAcc, m.valLoss, late].map((v) => (v === "" ? "" : String(v))).join(","),
      );
    });
    // each epoch's validation metric is the sample-weighted mean over the batches (6, 6, 6, 2)
    const params = r.state.params;
    const direct = [0, 1, 2, 3].map((i) => {
      const b = val.epoch(0).get(i);
      return { n: b.y.size, ...accuracy(params, b) };
    });
    const mean = direct.reduce((s, d) => s + d.valLoss * d.n, 0) / 20;
    expect(r.history[2].metrics.valLoss).toBeCloseTo(mean, 12);
    const svg = readFileSync(join(dir, "metrics.svg"), "utf8");
    for (const label of ["loss", "valAcc", "valLoss", "late"]) expect(svg).toContain(`>${label}</text>`);
  });

  it("resumes from modelCheckpoint's last bit for bit: the same params, CSV, kept checkpoints and callback states", async () => {
    const val = loader(arrayDataset(samples.slice(0, 16)), { batchSize: 8, shuffle: false });
    const validate = { data: val, metrics: (p: Tree, b: B) => ({ valLoss: lossOf(p, b).toArray()[0] }) };
    const run = async (dir: string, epochs: number, from?: string) => {
      const trainer = train(valueAndGrad(lossOf), sgd({ lr: 0.05, momentum: 0.9 }));
      const template = model.init(new Rng(1)) as unknown as Tree;
      const ck = from ? load<any>(join(dir, "ckpt", from)) : undefined;
      const state = ck ? await trainer.restore(template, ck) : await trainer.init(template);
      const callbacks = [
        csvLogger({ dir }),
        earlyStopping({ monitor: "valLoss", patience: 10 }),
        modelCheckpoint({ dir: join(dir, "ckpt"), monitor: "valLoss", saveTopK: 2, saveLast: true }),
      ];
      const data = loader(arrayDataset(samples), { batchSize: 8, seed: 3 });
      const resume = ck ? { resume: ck.fit, callbackStates: ck.fit.callbacks } : {};
      return runFit({ trainer, state, train: data, validate, epochs, callbacks, ...resume, ...quiet });
    };
    const straight = tmp();
    const a = await run(straight, 4);
    const resumed = tmp();
    await run(resumed, 2);
    const b = await run(resumed, 4, "last");
    expect(b.history.map((h) => h.epoch)).toEqual([3, 4]);
    const bits = (r: typeof a) => model.apply(r.state.params, tensorOf(samples[0].x)).toArray();
    expect(bits(b)).toEqual(bits(a));
    expect(b.history.map((h) => h.loss)).toEqual(a.history.slice(2).map((h) => h.loss));
    expect(readFileSync(join(resumed, "metrics.csv"), "utf8")).toBe(
      readFileSync(join(straight, "metrics.csv"), "utf8"),
    );
    expect(readdirSync(join(resumed, "ckpt")).sort()).toEqual(readdirSync(join(straight, "ckpt")).sort());
    expect(b.callbackStates).toEqual(a.callbackStates);
    await expect(run(resumed, 4, "last")).rejects.toThrow(
      "plait: fit: resume.epoch 4 is not before epochs 4: nothing is left to train",
    );
  });

  it("a diverging run stops with an error naming the epoch and the step", async () => {
    const { trainer, state } = await setup();
    let calls = 0;
    const nanAt = (epoch: number, batch: number) => (e: number) => {
      const inner = loader(arrayDataset(samples), { batchSize: 8, seed: 3 }).epoch(e);
      return { ...inner, get: (i: number) => ({ ...inner.get(i), nan: e + 1 === epoch && i === batch }) };
    };
    const nanTrainer = train(
      (p: Tree, b: B & { nan: boolean }, ctx) => {
        calls++;
        const out = valueAndGrad(lossOf)(p, b, ctx);
        return b.nan ? { ...out, loss: Number.NaN } : out;
      },
      sgd({ lr: 0.1 }),
    );
    await expect(runFit({ trainer: nanTrainer, state, train: nanAt(2, 2), epochs: 3, ...quiet })).rejects.toThrow(
      "plait: fit: the loss is NaN at epoch 2, step 9 (batch 3 of 6); the run diverged: lower the learning rate, clip the gradients or scale the loss",
    );
    expect(calls).toBe(9);
    // a step the loss scaler skipped (overflow) may report an infinite loss: not a divergence
    const skipping = train(
      (p: Tree, b: B & { nan: boolean }, ctx) => {
        const out = valueAndGrad(lossOf)(p, b, ctx);
        return b.nan ? { ...out, loss: Number.POSITIVE_INFINITY, skip: true } : out;
      },
      sgd({ lr: 0.1 }),
    );
    const r = await runFit({ trainer: skipping, state, train: nanAt(1, 0), epochs: 1, ...quiet });
    expect(r.history[0].skipped).toBe(1);
    expect(trainer).toBeDefined();
  });

  it("modelCheckpoint keeps exactly the top k by the monitored metric (min and max), and last", async () => {
    const seqs = [
      [5, 3, 8, 1, 9, 2, 7, 4],
      [0.5, 0.25, 0.75, 0.125, 0.875, 0.375],
    ];
    for (const seq of seqs) {
      for (const mode of ["min", "max"] as const) {
        for (const k of [1, 2, 3, -1, 0]) {
          const dir = tmp();
          const t = await idle(2);
          await runFit({
            ...t,
            validate: logs(seq),
            epochs: seq.length,
            callbacks: [modelCheckpoint({ dir, monitor: "score", mode, saveTopK: k, saveLast: true })],
            ...quiet,
          });
          const ranked = seq
            .map((v, i) => ({ v, epoch: i + 1 }))
            .sort((a, b) => (mode === "min" ? a.v - b.v : b.v - a.v));
          const kept = (k === -1 ? ranked : ranked.slice(0, k)).map((e) => `epoch=${e.epoch}-step=${2 * e.epoch}`);
          expect(readdirSync(dir).sort(), `${mode} k=${k} ${seq}`).toEqual([...kept, "last"].sort());
          for (const name of kept) {
            const c = load<{ params: Tree; fit: { epoch: number; metrics: { score: number } } }>(join(dir, name));
            expect(c.fit.metrics.score).toBe(seq[c.fit.epoch - 1]);
          }
          const last = load<{ params: Tree; fit: { epoch: number } }>(join(dir, "last"));
          expect(last.fit.epoch).toBe(seq.length);
        }
      }
    }
  });

  it("modelCheckpoint: ties keep the older checkpoint, a NaN never displaces one, no monitor keeps the latest", async () => {
    const run = async (seq: number[], k: number, monitor?: string) => {
      const dir = tmp();
      const r = await runFit({
        ...(await idle(1)),
        validate: logs(seq),
        epochs: seq.length,
        callbacks: [modelCheckpoint({ dir, monitor, saveTopK: k })],
        ...quiet,
      });
      return { files: readdirSync(dir).sort(), state: r.callbackStates[0] };
    };
    // min: 2 ties the worst kept (2) and loses; then 1 pushes out the first of the equal worst (epoch 1)
    expect((await run([2, 2, 2, 1], 2, "score")).files).toEqual(["epoch=2-step=2", "epoch=4-step=4"]);
    expect((await run([3, Number.NaN, 1], 1, "score")).files).toEqual(["epoch=3-step=3"]);
    expect((await run([Number.NaN, 3], 2, "score")).files).toEqual(["epoch=1-step=1", "epoch=2-step=2"]);
    const none = await run([3, 1, 2], 1);
    expect(none.files).toEqual(["epoch=3-step=3"]);
    expect(() => modelCheckpoint({ dir: "x", saveTopK: 2 })).toThrow(
      "plait: modelCheckpoint: saveTopK 2 needs a monitor to rank the checkpoints by; without one, saveTopK is 1 (the latest), -1 (all) or 0",
    );
  });

  it("earlyStopping stops at the right epoch (patience, minDelta, mode, non-finite)", async () => {
    const stopAt = async (seq: number[], o: Parameters<typeof earlyStopping>[0]) => {
      const r = await runFit({
        ...(await idle(1)),
        validate: logs(seq),
        epochs: seq.length,
        callbacks: [earlyStopping(o)],
        ...quiet,
      });
      return { epochs: r.history.length, stopped: r.stopped };
    };
    const seq = [1.0, 0.8, 0.75, 0.71, 0.5, 0.45, 0.44, 0.43];
    // minDelta 0.1: 0.8 improves on 1.0; 0.75 and 0.71 do not beat 0.8 by more than 0.1 → stop after epoch 4
    expect(await stopAt(seq, { monitor: "score", patience: 2, minDelta: 0.1 })).toEqual({
      epochs: 4,
      stopped: {
        epoch: 4,
        by: "earlyStopping",
        reason: "score did not improve by more than 0.1 in the last 2 epochs (the best was 0.800000)",
      },
    });
    // no minDelta: every value improves → runs to the end
    expect((await stopAt(seq, { monitor: "score", patience: 1 })).epochs).toBe(8);
    // patience 0 stops at the first epoch without improvement; max mode
    expect((await stopAt([1, 2, 2, 3], { monitor: "score", patience: 0, mode: "max" })).epochs).toBe(3);
    expect((await stopAt([1, 2, 1.5, 2.5, 2.4, 2.3, 9], { monitor: "score", patience: 2, mode: "max" })).epochs).toBe(
      6,
    );
    // minDelta's sign is ignored (Lightning flips it by mode)
    expect((await stopAt(seq, { monitor: "score", patience: 2, minDelta: -0.1 })).epochs).toBe(4);
    const nan = await stopAt([3, 2, Number.NaN, 1], { monitor: "score", patience: 5 });
    expect(nan.epochs).toBe(3);
    expect(nan.stopped?.reason).toBe("score = NaN is not finite (the best was 2.00000)");
  });

  it("a monitored metric that is never logged is an error naming it and the logged ones", async () => {
    for (const cb of [earlyStopping({ monitor: "val_loss" }), modelCheckpoint({ dir: tmp(), monitor: "val_loss" })]) {
      await expect(
        runFit({ ...(await idle(1)), validate: logs([1, 2]), epochs: 2, callbacks: [cb], ...quiet }),
      ).rejects.toThrow(`plait: ${cb.name}: monitor "val_loss" was never logged; logged: loss, score`);
    }
  });

  it("lrMonitor logs the learning rate of each epoch's first update (fixed or a schedule)", async () => {
    const { trainer, state, data } = await setup(0.05);
    const fixed = await runFit({ trainer, state, train: data, epochs: 2, callbacks: [lrMonitor()], ...quiet });
    expect(fixed.history.map((h) => h.metrics.lr)).toEqual([0.05, 0.05]);
    const schedule = (step: number) => 0.1 / (1 + step);
    const t2 = train(valueAndGrad(lossOf), sgd({ lr: schedule }));
    const s2 = await t2.init(model.init(new Rng(1)) as unknown as Tree);
    const r = await runFit({
      trainer: t2,
      state: s2,
      train: data,
      epochs: 3,
      callbacks: [lrMonitor({ schedule })],
      ...quiet,
    });
    expect(r.history.map((h) => h.metrics.lr)).toEqual([schedule(0), schedule(6), schedule(12)]);
    await expect(
      runFit({ trainer: t2, state: s2, train: data, epochs: 1, callbacks: [lrMonitor()], ...quiet }),
    ).rejects.toThrow(
      'plait: lrMonitor: the optimizer\'s lr is "schedule"; pass the same function as lrMonitor({ schedule })',
    );
  });

  it("log checks names and reduce; callback states can be handed back to resume", async () => {
    const t = await idle(1);
    await expect(runFit({ ...t, validate: ({ log }) => log("loss", 1), epochs: 1, ...quiet })).rejects.toThrow(
      'plait: log: "loss" is one of the values fit records itself (loss, epoch, step); pick another name',
    );
    await expect(
      runFit({ ...t, validate: ({ log }) => log("a", 1, { reduce: "max" as never }), epochs: 1, ...quiet }),
    ).rejects.toThrow('plait: log: a: option reduce must be "mean" or "sum", got "max"');
    const es = earlyStopping({ monitor: "score", patience: 2 });
    const first = await runFit({ ...t, validate: logs([1, 2]), epochs: 2, callbacks: [es], ...quiet });
    expect(first.callbackStates).toEqual([{ best: 1, wait: 1, stoppedEpoch: 0 }]);
    const second = await runFit({
      ...t,
      state: first.state,
      validate: logs([3]),
      epochs: 1,
      callbacks: [es],
      callbackStates: first.callbackStates,
      ...quiet,
    });
    expect(second.stopped?.epoch).toBe(1);
    await expect(runFit({ ...t, state: {} as never, epochs: 1, ...quiet })).rejects.toThrow(
      "plait: fit: option state must be a TrainState (from await trainer.init(params))",
    );
    const half = loader(arrayDataset([1, 2, 3, 4]), { batchSize: 1, rank: 0, worldSize: 2 });
    await expect(runFit({ ...t, train: half, epochs: 1, ...quiet })).rejects.toThrow(
      "plait: fit: the train loader is sharded as rank 0 of 2, but this is rank 0 of 1: make it with loader(dataset, { rank, worldSize, ... }) from the rank's ctx (under withDP, rank 0 takes whole batches: rank 0 of 1)",
    );
    const tensorMetric = { data: t.train, metrics: (_p: Tree, b: Tensor) => ({ m: b as unknown as number }) };
    await expect(runFit({ ...t, validate: tensorMetric, epochs: 1, ...quiet })).rejects.toThrow(
      "plait: fit: validate.metrics returned m: object for batch 0; each metric must be a number (e.g. t.toArray()[0])",
    );
    await expect(runFit({ ...t, epochs: 0, ...quiet })).rejects.toThrow(
      "plait: fit: option epochs must be an integer ≥ 1, got 0",
    );
  });
});
