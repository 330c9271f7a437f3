// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// Training on a real CUDA device, without vitest: node test/gpu/train.mjs <train.json>. Run by
// test/gpu/run.sh. The same cases as test/cuda-autodiff.test.ts and test/cuda-train.test.ts (which
// run plait's wiring on a fake device here), now on the PTX kernels and cuBLAS: valueAndGrad of
// the MNIST MLP on cuda:0 against a float64 CPU reference; optimizer and AMP steps on cuda:0
// against the same steps on the CPU; withDDP, withZeRO and withFSDP over NcclComm on 1 rank
// (withDDP on 2 when CUDA reports 2 devices, as 2 processes meeting at a TCP store). Each case
// records { name, ok, ms, info?, error? }; the exit status is 1 when any failed.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { deviceCount } from "../../dist/ffi/cuda/runtime.js";
import {
  adamw,
  cast,
  localComm,
  ncclWorld,
  sgd,
  train,
  treeLeaves,
  valueAndGrad,
  withAMP,
  withDDP,
  withFSDP,
  withGradClip,
  withZeRO,
} from "../../dist/src/index.js";
import { cases, labels, mlpLoss as loss, mlpParams as params, t } from "./harness.mjs";

const { results, assert, test, finish } = cases();
const file = process.argv[2] ?? "train.json";

const batch = (i, amp = 1) => ({ x: t([32, 784], 100 + i, amp), y: labels(32, 200 + i) });
const toDev = (tree, device = "cuda:0") => Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.to(device)]));

/** Largest |got − want| / (1 + |want|) over all elements. */
function maxRel(got, want) {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return m;
}

await test("valueAndGrad of the MNIST MLP on cuda:0 against the CPU float64 reference", () => {
  const b = batch(0);
  const ref = valueAndGrad(loss)(params("f64"), { x: cast(b.x, "f64"), y: b.y });
  const dev = valueAndGrad(loss)(toDev(params()), { x: b.x.to("cuda:0"), y: b.y.to("cuda:0") });
  const info = { loss: dev.loss, lossRef: ref.loss };
  assert(Math.abs(dev.loss - ref.loss) < 1e-5 * (1 + Math.abs(ref.loss)), `loss ${dev.loss} vs ${ref.loss}`);
  for (const k of ["w1", "b1", "w2", "b2"]) {
    assert(dev.grads[k].device === "cuda:0", `${k}'s gradient is on cuda:0`);
    const rel = maxRel(dev.grads[k].toArray(), ref.grads[k].toArray());
    info[k] = rel;
    assert(rel < 1e-5, `${k}: max relative error ${rel}`);
  }
  return info;
});

/** The same trainer over `n` batches on cpu and on cuda:0; the max relative difference of the final params. */
async function compare(make, n, amp = 1) {
  const final = [];
  const outs = [];
  for (const device of ["cpu", "cuda:0"]) {
    const trainer = make();
    let state = await trainer.init(device === "cpu" ? params() : toDev(params()));
    const o = [];
    for (let i = 0; i < n; i++) {
      const b = batch(i, i === n - 1 ? amp : 1);
      const r = await trainer(state, device === "cpu" ? b : { x: b.x.to("cuda:0"), y: b.y.to("cuda:0") });
      state = r.state;
      o.push({ loss: r.out.loss, skip: r.out.skip ?? false, ...r.out.metrics });
    }
    final.push(treeLeaves(state.params).map((l) => l.toArray()));
    outs.push(o);
  }
  const rel = Math.max(...final[0].map((want, i) => maxRel(final[1][i], want)));
  return { rel, cpu: outs[0], dev: outs[1] };
}

for (const [name, make, tol] of [
  [
    "sgd momentum (nesterov, weight decay)",
    () => train(valueAndGrad(loss), sgd({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 })),
    1e-5,
  ],
  ["adamw", () => train(valueAndGrad(loss), adamw({ lr: 1e-3, weightDecay: 0.01 })), 1e-5],
  [
    "withAMP 16-mixed + sgd",
    () => train(withAMP(valueAndGrad(loss), { precision: "16-mixed" }), sgd({ lr: 0.1, momentum: 0.9 })),
    1e-3,
  ],
  [
    "withAMP bf16-mixed + sgd",
    () => train(withAMP(valueAndGrad(loss), { precision: "bf16-mixed" }), sgd({ lr: 0.1, momentum: 0.9 })),
    1e-2,
  ],
  [
    "withGradClip(maxNorm 0.1) + sgd",
    () => train(withGradClip(valueAndGrad(loss), { maxNorm: 0.1 }), sgd({ lr: 0.1 })),
    1e-5,
  ],
]) {
  await test(`4 steps on cuda:0 match the CPU: ${name}`, async () => {
    const r = await compare(make, 4);
    assert(r.rel < tol, `params differ by ${r.rel} (relative), tolerance ${tol}`);
    return r;
  });
}

await test("16-mixed: an overflowing batch is skipped on cuda:0 as on the CPU", async () => {
  const r = await compare(
    () => train(withAMP(valueAndGrad(loss), { precision: "16-mixed" }), sgd({ lr: 0.1 })),
    3,
    1e30,
  );
  assert(JSON.stringify(r.dev.map((o) => o.skip)) === JSON.stringify(r.cpu.map((o) => o.skip)), "same skips");
  assert(r.dev.at(-1).skip === true, "the last step was skipped");
  return r;
});

for (const [name, wrap] of [
  ["withDDP", (st) => withDDP(st)],
  ["withZeRO stage 2", (st) => withZeRO(st, { stage: 2 })],
  ["withFSDP", (st) => withFSDP(st)],
]) {
  await test(`${name} over NcclComm, 1 rank on cuda:0: the same params as without it`, async () => {
    const comm = await ncclWorld({ rank: 0, worldSize: 1, comm: localComm() }, { device: 0, timeoutMs: 60_000 });
    try {
      const run = async (trainer) => {
        let state = await trainer.init(toDev(params()));
        for (let i = 0; i < 3; i++) {
          const b = batch(i);
          state = (await trainer(state, { x: b.x.to("cuda:0"), y: b.y.to("cuda:0") })).state;
        }
        return treeLeaves(await trainer.gather(state)).map((l) => l.toArray());
      };
      const a = await run(train(wrap(valueAndGrad(loss)), sgd({ lr: 0.1, momentum: 0.9 }), { comm }));
      const b = await run(train(valueAndGrad(loss), sgd({ lr: 0.1, momentum: 0.9 })));
      const rel = Math.max(...a.map((x, i) => maxRel(x, b[i])));
      assert(rel < 1e-6, `one rank's ${name} matches no strategy: max difference ${rel}`);
      return { library: comm.library, rel };
    } finally {
      await comm.destroy();
    }
  });
}

const gpus = (() => {
  try {
    return deviceCount();
  } catch {
    return 0;
  }
})();
if (gpus >= 2) {
  await test("two processes: withDDP over NcclComm on cuda:0 and cuda:1 (torchrun's variables)", async () => {
    const port = await new Promise((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const script = fileURLToPath(new URL("./train-rank.mjs", import.meta.url));
    const runs = [0, 1].map(
      (rank) =>
        new Promise((resolve) => {
          const env = {
            ...process.env,
            WORLD_SIZE: "2",
            RANK: String(rank),
            LOCAL_RANK: String(rank),
            MASTER_ADDR: "127.0.0.1",
            MASTER_PORT: String(port),
          };
          const child = spawn(process.execPath, [script], { env, stdio: ["ignore", "pipe", "inherit"] });
          let out = "";
          child.stdout.on("data", (d) => {
            out += d;
          });
          child.on("close", () => resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "{}")));
        }),
    );
    const [r0, r1] = await Promise.all(runs);
    assert(r0.ok && r1.ok, `both ranks finished: ${JSON.stringify([r0, r1])}`);
    assert(JSON.stringify(r0.params) === JSON.stringify(r1.params), "both ranks hold the same params");
    return { ranks: [r0.device, r1.device] };
  });
} else
  results.push({ name: "two processes: withDDP over NcclComm", ok: true, skipped: `CUDA reports ${gpus} device(s)` });

finish(file);
