// Suite "casts": GB/s of the dtype casts and the fused unscale + finite check on one thread
// inside WASM, on 64 MiB of f32 (16 Mi elements; the 16-bit side is 32 MiB). GB/s counts bytes
// read + bytes written (a copy of S bytes moves 2S). Peers measured in the same run:
// `memory.copy` of the 64 MiB inside WASM (the speed of light), TypedArray.prototype.set of the
// same bytes, a plain-JS loop doing the same conversion, and numpy's astype (python3, if present).
import { execFileSync } from "node:child_process";
import { runtime } from "plait";
import { type Measurement, medianSeconds } from "./lib/measure.ts";
import { type RatioCheck, report } from "./lib/report.ts";

const N = 16 << 20; // elements
const MiB = 1 << 20;
const ROUNDS = 5;

/** Plain-JS versions of each conversion: what a user without WASM kernels would write. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function jsToBF16(src: Uint32Array, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) {
    const u = src[i];
    dst[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
}

function jsFromBF16(src: Uint16Array, dst: Uint32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = src[i] << 16;
}

// f32 → f16 with the float-add rounding of the WASM kernel, scalar.
function jsToF16(src: Uint32Array, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) {
    const u = src[i];
    const sign = (u >>> 16) & 0x8000;
    const a = u & 0x7fffffff;
    if (a > 0x7f800000) {
      dst[i] = sign | 0x7e00 | ((a >>> 13) & 0x3ff);
      continue;
    }
    const c = Math.min(a, 0x47800000);
    u32[0] = Math.max(c & 0x7f800000, 0x38800000) + 0x07800000;
    const bias = f32[0];
    u32[0] = c + 0x01000000;
    f32[0] = bias + f32[0];
    const s = u32[0];
    dst[i] = sign | (((s >>> 13) + s) & 0x7fff);
  }
}

function jsFromF16(src: Uint16Array, dst: Uint32Array): void {
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = (h & 0x8000) << 16;
    const m = h & 0x7fff;
    if (m < 0x400) {
      f32[0] = m * 2 ** -24;
      dst[i] = sign | u32[0];
    } else dst[i] = sign | (m >= 0x7c00 ? 0x7f800000 | ((m & 0x3ff) << 13) : (m << 13) + 0x38000000);
  }
}

function jsUnscale(x: Float32Array, inv: number): boolean {
  let ok = true;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) ok = false;
    x[i] = v * inv;
  }
  return ok;
}

/** numpy's GB/s (same byte convention) for the casts it has, or undefined without python3/numpy. */
function numpyRates(): Record<string, number> | undefined {
  const script = `
import json, time, numpy as np
n = ${N}
x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
h = x.astype(np.float16)
y = np.empty(n, np.float32)
def rate(f, nbytes):
    ts = []
    for _ in range(7):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return nbytes / sorted(ts)[3] / 1e9
def unscale():
    np.multiply(x, np.float32(1.0), out=x); np.isfinite(x).all()
print(json.dumps({
    "f32→f16": rate(lambda: x.astype(np.float16), 6 * n),
    "f16→f32": rate(lambda: h.astype(np.float32), 6 * n),
    "unscale+finite f32": rate(unscale, 8 * n),
    "copy": rate(lambda: np.copyto(y, x), 8 * n),
}))
`;
  try {
    return JSON.parse(
      execFileSync("python3", ["-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
    );
  } catch {
    return undefined;
  }
}

export async function run(): Promise<void> {
  const { arena, k, memory, variant } = runtime();
  const src = arena.alloc(N * 4); // f32 input (also the in-place unscale buffer)
  const half = arena.alloc(N * 2); // 16-bit input
  const dst = arena.alloc(N * 4); // output of every cast
  const flag = arena.alloc(4); // the unscale kernels' finite flag
  const buf = memory.buffer;
  const x = new Float32Array(buf, src, N);
  for (let i = 0; i < N; i++) x[i] = (Math.random() - 0.5) * 8; // normal numbers: subnormals stall x86 float units
  k.as.f32_to_f16(src, half, N);
  const gb = (bytes: number, seconds: number) => bytes / seconds / 1e9;
  const rows: Measurement[] = [];
  const add = (c: string, impl: string, value: number) => rows.push({ case: c, impl, value, unit: "GB/s" });

  // memory.copy and each kernel are measured in alternation, ROUNDS times, and each ratio is the
  // median of the per-round ratios: on a shared machine bandwidth drifts between measurements
  const copies: number[] = [];
  const copyRate = async () => gb(2 * N * 4, await medianSeconds(() => k.as.copy_bytes(dst, src, N * 4), 150));
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const setRate = gb(2 * N * 4, await medianSeconds(() => new Float32Array(buf, dst, N).set(x)));

  // each case: bytes moved, the WASM kernel, the plain-JS loop
  const s32 = new Uint32Array(buf, src, N);
  const h16 = new Uint16Array(buf, half, N);
  const d16 = new Uint16Array(buf, dst, N);
  const d32 = new Uint32Array(buf, dst, N);
  const unscaleLoop = () => jsUnscale(x, 1);
  const cases: [string, number, () => unknown, () => unknown][] = [
    ["f32→bf16", 6 * N, () => k.as.f32_to_bf16(src, dst, N), () => jsToBF16(s32, d16)],
    ["bf16→f32", 6 * N, () => k.as.bf16_to_f32(half, dst, N), () => jsFromBF16(h16, d32)],
    ["f32→f16", 6 * N, () => k.as.f32_to_f16(src, dst, N), () => jsToF16(s32, d16)],
    ["f16→f32", 6 * N, () => k.as.f16_to_f32(half, dst, N), () => jsFromF16(h16, d32)],
    // in place with inv = 1, so that repeated runs leave the data as it was
    ["unscale+finite f32", 8 * N, () => k.as.unscale_f32(src, src, N, 1, flag), unscaleLoop],
  ];
  const wasm: Record<string, number> = {};
  const js: Record<string, number> = {};
  const vsCopy: Record<string, number> = {};
  for (const [name, bytes, kernel, loop] of cases) {
    const rates: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const c = await copyRate();
      rates.push(gb(bytes, await medianSeconds(kernel, 150)));
      copies.push(c);
      ratios.push(rates[r] / c);
    }
    wasm[name] = median(rates);
    vsCopy[name] = median(ratios);
    const fromWasm = d32.slice(0, 1 << 16); // the casts write dst: the JS loop must agree
    js[name] = gb(bytes, await medianSeconds(loop, 100));
    if (loop !== unscaleLoop && d32.subarray(0, 1 << 16).some((v, i) => v !== fromWasm[i])) {
      throw new Error(`bench casts: the plain-JS ${name} loop disagrees with the kernel`);
    }
    add(name, "plait wasm (1 thread)", wasm[name]);
    add(name, "plain JS loop", js[name]);
  }
  wasm["unscale+finite f16→f32"] = gb(6 * N, await medianSeconds(() => k.as.unscale_f16_f32(half, dst, N, 1, flag)));
  add("unscale+finite f16→f32", "plait wasm (1 thread)", wasm["unscale+finite f16→f32"]);
  add("copy 64 MiB", "memory.copy (wasm)", median(copies));
  add("copy 64 MiB", "TypedArray.set", setRate);
  const np = numpyRates();
  if (np) for (const [name, rate] of Object.entries(np)) add(name === "copy" ? "copy 64 MiB" : name, "numpy", rate);

  const checks: RatioCheck[] = [];
  const targets: [string, number][] = [
    ["f32→bf16", 0.75],
    ["bf16→f32", 0.75],
    ["f32→f16", 0.3],
    ["f16→f32", 0.3],
    ["unscale+finite f32", 0.85],
  ];
  for (const [name, target] of targets) {
    checks.push({ name: `${name} / memory.copy`, ratio: vsCopy[name], target });
  }
  for (const [name] of targets) checks.push({ name: `${name} / plain JS`, ratio: wasm[name] / js[name], target: 8 });

  arena.free(src);
  arena.free(half);
  arena.free(dst);
  arena.free(flag);
  report("casts", rows, checks, {
    elements: N,
    bytes: `GB/s = (bytes read + bytes written) / s; f32 side ${(N * 4) / MiB} MiB, 16-bit side ${(N * 2) / MiB} MiB`,
    threads: 1,
    variant,
    copy: `memory.copy alternates with each kernel ${ROUNDS} times; a ratio is the median of the per-round ratios`,
    numpy: np ? "python3 numpy, median of 7" : "not found",
  });
}
