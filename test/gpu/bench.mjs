// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// GPU benchmark: node test/gpu/bench.mjs <bench.json> [torch.json]. Run by test/gpu/run.sh.
// plait's cuBLAS GEMM (ffi/cuda) at 8192³ f32 and bf16 against torch.matmul (torch.json, from
// torch_bench.py in the same run), the cast and unscale kernels against a device-to-device copy, and NCCL
// allreduce on one rank, and the MNIST demo on cuda:0 against the CPU run (samples/s). Every
// section records its numbers or why it could not run.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { memcpyDtoD, memcpyHtoD, memsetAsync, streamSynchronize } from "../../dist/ffi/cuda/runtime.js";
import { localComm } from "../../dist/src/comm/local.js";
import { NcclComm } from "../../dist/src/comm/nccl.js";
import { Buf } from "./device.mjs";

const file = process.argv[2] ?? "bench.json";
let torch = {};
try {
  torch = JSON.parse(readFileSync(process.argv[3] ?? "torch.json", "utf8"));
} catch {}
const res = { torch };
const sync = () => streamSynchronize(0n);

async function section(name, fn) {
  try {
    res[name] = await fn();
  } catch (e) {
    res[name] = { error: `${e.name}: ${e.message}` };
  }
  console.log(name, JSON.stringify(res[name]));
}

/** Host-timed: `warm` runs, then the mean of `reps`, each batch ended by `wait`. */
async function timed(run, wait, warm = 3, reps = 10) {
  for (let i = 0; i < warm; i++) await run();
  await wait();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  await wait();
  return (performance.now() - t0) / reps;
}

const BYTES = 256 << 20;
await section("d2d_copy", async () => {
  const a = new Buf([BYTES], "u8", 0);
  const b = new Buf([BYTES], "u8", 0);
  const ms = await timed(() => memcpyDtoD(b.ptr, a.ptr, BYTES, 0n), sync, 3, 20);
  a.dispose();
  b.dispose();
  return { bytes: BYTES, ms, gbps_read_write: (2 * BYTES) / ms / 1e6 };
});

// the CUDA engineer's layer (ffi/cuda, src/core/device.ts), when it is in dist/
let cu;
try {
  cu = await import("../../dist/ffi/cuda/index.js");
  await import("../../dist/ffi/cuda/backend.js");
} catch (e) {
  res.cuda_layer = { error: `ffi/cuda is not built: ${e.message}` };
}

const N = 8192;
for (const dtype of ["f32", "bf16"]) {
  await section(`gemm_${dtype}`, async () => {
    if (!cu) throw new Error("no ffi/cuda in dist/");
    const { CudaTensor } = await import("../../dist/src/core/device.js");
    const a = new CudaTensor([N, N], dtype, 0);
    const b = new CudaTensor([N, N], dtype, 0);
    // same kind of values as torch.randn: fill from a host pattern once
    const host = new Float32Array(N * N).map(() => Math.random() * 2 - 1);
    const bytes =
      dtype === "f32"
        ? new Uint8Array(host.buffer)
        : new Uint8Array((await import("./device.mjs")).toBf16(host).buffer);
    memcpyHtoD(a.ptr, bytes, 0n);
    memcpyHtoD(b.ptr, bytes, 0n);
    sync();
    // plait's half GEMM writes f32 (cublasGemmEx, f32 accumulation); torch's bf16 one writes bf16
    const out = new CudaTensor([N, N], "f32", 0);
    const ms = await timed(
      () => cu.cudaMatmul(a, b, { out }),
      () => cu.deviceSynchronize(),
    );
    const tflops = (2 * N ** 3) / ms / 1e9;
    const base = torch[`gemm_${dtype}`]?.tflops;
    for (const t of [a, b, out]) t.dispose();
    return { ms, tflops, torch_tflops: base ?? null, ratio: base ? tflops / base : null, target: 0.95, out: "f32" };
  });
}

const n = 64 << 20; // elements
for (const [kernel, inBytes, outBytes] of [
  ["cast_f32_bf16", 4, 2],
  ["cast_bf16_f32", 2, 4],
  ["cast_f32_f16", 4, 2],
  ["unscale_f32", 4, 4],
  ["unscale_bf16", 2, 4],
]) {
  await section(kernel, async () => {
    if (!cu?.launchKernel) throw new Error("no ffi/cuda launchKernel in dist/");
    const src = new Buf([n * inBytes], "u8", 0);
    const dst = new Buf([n * outBytes], "u8", 0);
    memsetAsync(src.ptr, 0, n * inBytes, 0n);
    const flag = new Buf([4], "i32", 0);
    // unscale: (src, dst, n, 1/scale, found_inf flag); casts: (src, dst, n)
    const args = kernel.startsWith("unscale")
      ? [src.ptr, dst.ptr, BigInt(n), 0.5, flag.ptr]
      : [src.ptr, dst.ptr, BigInt(n)];
    const ms = await timed(
      () => cu.launchKernel(kernel, 0, cu.gridFor(n), args),
      () => cu.deviceSynchronize(),
      3,
      20,
    );
    for (const b of [src, dst, flag]) b.dispose();
    const gbps = (n * (inBytes + outBytes)) / ms / 1e6;
    const copy = res.d2d_copy?.gbps_read_write;
    return { elements: n, ms, gbps, vs_d2d_copy: copy ? gbps / copy : null, target: 0.7 };
  });
}

await section("nccl_allreduce_1rank", async () => {
  const comm = await NcclComm.bootstrap({ rank: 0, worldSize: 1, device: 0, via: localComm(), timeoutMs: 60_000 });
  const rows = [];
  for (const mib of [1, 16, 256]) {
    const x = new Buf([(mib << 20) / 4], "f32", 0);
    const ms = await timed(
      () => comm.allReduce(x, "sum"),
      async () => {},
      3,
      20,
    );
    rows.push({ mib, ms, algbw_gbps: (mib << 20) / ms / 1e6 });
    x.dispose();
  }
  const t = performance.now();
  for (let i = 0; i < 100; i++) await comm.barrier();
  const barrier_us = ((performance.now() - t) / 100) * 1000;
  await comm.destroy();
  return { library: comm.library, rows, barrier_us };
});

/** `plait demo --json` with `flags` in a child process: its summary (samplesPerSec, testAccuracy) or its error. */
function demo(flags) {
  const main = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
  const r = spawnSync(process.execPath, [main, "demo", "--json", "--out", tmpdir(), ...flags], {
    encoding: "utf8",
    timeout: 90_000,
  });
  if (r.status !== 0)
    throw new Error(`plait demo ${flags.join(" ")}: exit ${r.status}: ${r.stderr.trim().split("\n").at(-1)}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1));
}

// The MNIST MLP (784-256-10, batch 64, SGD momentum), one epoch, on cuda:0 and on the CPU
// (this machine's cores: PLAIT_THREADS unset) in the same run: samples/s of each, and the ratio.
await section("mnist_demo", async () => {
  const flags = ["--epochs", "1"];
  const gpu = demo([...flags, "--device", "cuda:0"]);
  const gpu16 = demo([...flags, "--device", "cuda:0", "--precision", "16-mixed"]);
  const cpu = demo(flags);
  return {
    epochs: 1,
    cuda: { samplesPerSec: gpu.samplesPerSec, testAccuracy: gpu.testAccuracy },
    cuda_16_mixed: { samplesPerSec: gpu16.samplesPerSec, testAccuracy: gpu16.testAccuracy },
    cpu: { samplesPerSec: cpu.samplesPerSec, testAccuracy: cpu.testAccuracy },
    cuda_vs_cpu: gpu.samplesPerSec / cpu.samplesPerSec,
  };
});

writeFileSync(file, `${JSON.stringify(res, null, 1)}\n`);
