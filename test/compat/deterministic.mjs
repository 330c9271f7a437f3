// configure({ deterministic: true }) / PLAIT_DETERMINISTIC=1 across runtimes and thread counts.
// `node test/compat/deterministic.mjs` (run by scripts/compat.mjs) is the driver: it trains the
// same short run in child processes — Node, Deno without and with --allow-ffi, Bun, each at 1 and
// 2 kernel threads, with the switch on — and requires every loss trajectory to be the same bits
// (the float64s printed as hex). Then, without the switch, Deno's default build (relaxed SIMD, its
// FMA) must give other bits, which shows the comparison can fail; and it reports whether Node and
// Bun agree without the switch on the plain build (they differ where V8's and JavaScriptCore's
// Math.exp do). `... deterministic.mjs train` is one child: it prints one JSON line.
//
// The run: MNIST digits, an MLP 784→512→10 (the 401k-element weight is above the size where
// reductions split across threads); SGD with momentum under withGradClip (Σ g² over the pool),
// then Adam on a warmup-cosine schedule (β^t and cos in JavaScript); then f64 exp, log and
// logSoftmax (JavaScript math on f64) over the trained weights.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const runtimeName = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const hex = (x) => {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0).toString(16).padStart(16, "0");
};

async function trainChild() {
  const plait = await import("plait");
  const data = plait.loadMnist({ train: 512, test: 0, seed: 1 });
  const model = plait.mlp([784, 512, 10]);
  const loss = (p, b) => plait.softmaxCrossEntropy(model.apply(p, b.x), b.y);
  const batcher = new plait.Batcher(data.train.n, { batchSize: 64, seed: 1 });
  const order = batcher.batches(0);
  const trajectory = [];
  const runWith = async (step, optimizer, params, steps, startStep = 0) => {
    const trainer = plait.train(step, optimizer);
    let state = await trainer.init(params);
    state = { ...state, opt: { ...state.opt, step: startStep } }; // as if resumed from a checkpoint
    for (let i = 0; i < steps; i++) {
      const { images, labels } = plait.gatherBatch(data.train, order[i % order.length]);
      const r = await trainer(state, { x: images, y: labels });
      state = r.state;
      trajectory.push(r.out.loss);
      if (r.out.metrics?.gradNorm !== undefined) trajectory.push(r.out.metrics.gradNorm);
      images.dispose();
      labels.dispose();
    }
    return state.params;
  };
  let params = model.init(new plait.Rng(7));
  params = await runWith(
    plait.withGradClip(plait.valueAndGrad(loss), { maxNorm: 1 }),
    plait.sgd({ lr: 0.1, momentum: 0.9 }),
    params,
    6,
  );
  // Adam from step 1000 (β^t for t > 1000, where V8's and JavaScriptCore's ** differ most), on a
  // warmup-cosine schedule still in its cosine part.
  const schedule = plait.warmupCosine({ peak: 1e-3, warmupSteps: 100, decaySteps: 5000 });
  params = await runWith(plait.valueAndGrad(loss), plait.adam({ lr: schedule }), params, 6, 1000);
  for (let i = 0; i < 6; i++) trajectory.push(schedule(1000 + i));
  // f64 ops whose forward runs JavaScript math: over the first 2560 trained weights (× 400, so
  // e^x spans e^±60, where V8's and JavaScriptCore's Math.exp differ more often), as f64.
  const leaf = plait.treeLeaves(params).find((t) => t.size >= 2560);
  const w = Float64Array.from(leaf.toArray().slice(0, 2560), (v) => v * 400);
  plait.scope(() => {
    const x = plait.tensor(w, [256, 10], { dtype: "f64" });
    const e = plait.exp(x);
    const l = plait.log(plait.add(e, e));
    const s = plait.logSoftmax(x);
    for (const t of [e, l, s]) trajectory.push(t.toArray().reduce((a, b) => a + b, 0));
  });
  const rt = plait.runtime();
  console.log(
    JSON.stringify({
      runtime: runtimeName,
      threads: rt.threads,
      variant: rt.variant,
      deterministic: rt.deterministic,
      blas: plait.blasStatus().inUse,
      trajectory: trajectory.map(hex),
    }),
  );
  rt.pool.close();
}

function driver() {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const bin = (name) => `${root}node_modules/.bin/${name}`;
  const script = "test/compat/deterministic.mjs";
  const deno = [bin("deno"), "run", "--allow-read", "--allow-env", "--allow-sys"];
  const runtimes = {
    node: [process.execPath, script],
    deno: [...deno, script],
    "deno --allow-ffi": [...deno, "--allow-ffi", script],
    bun: [bin("bun"), script],
  };
  const child = (name, env) => {
    const [cmd, ...args] = runtimes[name];
    const r = spawnSync(cmd, [...args, "train"], {
      cwd: root,
      env: { ...process.env, PLAIT_DETERMINISTIC: "", PLAIT_SIMD: "", PLAIT_BLAS: "", ...env },
      encoding: "utf8",
    });
    const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
    if (r.status !== 0 || !line)
      throw new Error(`${name} ${JSON.stringify(env)} failed (exit ${r.status}):\n${r.stderr}`);
    return { name, ...JSON.parse(line) };
  };
  const results = [];
  const check = (what, fn) => {
    try {
      fn();
      results.push([what, true]);
    } catch (e) {
      results.push([what, false, e]);
    }
  };
  const on = [];
  for (const name of Object.keys(runtimes)) {
    for (const threads of ["1", "2"]) {
      check(`${name}, ${threads} thread(s), PLAIT_DETERMINISTIC=1: runs the plain build, no BLAS`, () => {
        const r = child(name, { PLAIT_DETERMINISTIC: "1", PLAIT_THREADS: threads });
        console.log(`${r.name.padEnd(16)} threads ${r.threads} ${r.variant.padEnd(7)} ${r.trajectory.join(" ")}`);
        if (r.variant !== "simd" || r.blas || !r.deterministic || String(r.threads) !== threads) {
          throw new Error(`got ${JSON.stringify({ ...r, trajectory: undefined })}`);
        }
        on.push(r);
      });
    }
  }
  check("every deterministic run gives the same loss trajectory bits", () => {
    if (on.length !== 8) throw new Error(`only ${on.length} of 8 runs finished`);
    const ref = on[0].trajectory.join(" ");
    const differ = on.filter((r) => r.trajectory.join(" ") !== ref);
    if (differ.length) {
      throw new Error(
        `differ from ${on[0].name}/${on[0].threads}: ${differ.map((r) => `${r.name}/${r.threads}`).join(", ")}`,
      );
    }
  });
  check("without the switch, Deno's default relaxed-SIMD build gives other bits (the check can fail)", () => {
    const r = child("deno", { PLAIT_THREADS: "1" });
    console.log(`${"deno (default)".padEnd(16)} threads ${r.threads} ${r.variant.padEnd(7)} ${r.trajectory.join(" ")}`);
    if (r.variant !== "relaxed") throw new Error(`Deno ran the ${r.variant} build, not relaxed`);
    if (on.length && r.trajectory.join(" ") === on[0].trajectory.join(" ")) {
      throw new Error("same bits as the deterministic runs: this CPU's V8 did not fuse relaxed_madd (no FMA?)");
    }
  });
  // Informational: the plain build without BLAS but without the switch, on Node and Bun. Where the
  // engines' Math.exp (or **, Math.cos) differ for these inputs, the f64 part differs too.
  try {
    const plain = { PLAIT_SIMD: "simd", PLAIT_BLAS: "off", PLAIT_THREADS: "1" };
    const [n, b] = [child("node", plain), child("bun", plain)];
    const diff = n.trajectory.map((h, i) => (h === b.trajectory[i] ? "" : i)).filter((i) => i !== "");
    console.log(
      `info deterministic: without the switch (plain build, no BLAS), Node and Bun ${diff.length ? `differ at trajectory entries ${diff.join(", ")} (JavaScript math)` : "agree on this run"}`,
    );
  } catch (e) {
    console.log(`info deterministic: the run without the switch failed: ${e.message}`);
  }
  const failed = results.filter((r) => !r[1]);
  for (const [name, ok, e] of results)
    console.log(`${ok ? "ok  " : "FAIL"} deterministic: ${name}${ok ? "" : `\n     ${e?.message ?? e}`}`);
  console.log(`deterministic: ${results.length - failed.length} passed, ${failed.length} failed`);
  if (failed.length) process.exit(1);
}

if (process.argv[2] === "train") await trainChild();
else driver();
