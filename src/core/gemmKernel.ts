// Which f32 GEMM microkernel this process runs (kernels/c/gemm_f32.c exports one GEMM per
// kernel): timed among the candidates for this CPU family at first use, forced by
// PLAIT_GEMM_KERNEL, or fixed in deterministic mode. Every kernel sums each element of C in the
// same order, so in the plain SIMD build the choice changes speed, never bits
// (test/gemm-kernels.test.ts checks that).

import { readEnv } from "./kernels.ts";
import { runtime } from "./runtime.ts";

/** A register tile (MR rows × NR columns of C) and how A is broadcast (gemm_micro_f32.h). */
export interface GemmKernelInfo {
  /** "<MR>x<NR>-<scheme>", the PLAIT_GEMM_KERNEL value. */
  name: string;
  mr: number;
  nr: number;
  /** "loadsplat": v128.load32_splat per A value; "splat": a vector of A and lane shuffles. */
  scheme: "loadsplat" | "splat";
}

/** Every f32 GEMM kernel in plait-c, by name (kernels/c/gemm_f32.c's KERNEL list). */
export const GEMM_KERNELS: readonly GemmKernelInfo[] = [
  "4x8-loadsplat",
  "4x8-splat",
  "5x8-loadsplat",
  "5x8-splat",
  "6x8-loadsplat",
  "6x8-splat",
  "8x8-loadsplat",
  "8x8-splat",
  "4x16-loadsplat",
  "4x16-splat",
].map((name) => {
  const [, mr, nr, scheme] = /^(\d+)x(\d+)-(\w+)$/.exec(name)!;
  return { name, mr: Number(mr), nr: Number(nr), scheme: scheme as GemmKernelInfo["scheme"] };
});

/** Deterministic mode's kernel (and the one the plain gemm_f32/bf16/f16 exports run). */
export const FIXED_GEMM_KERNEL = "4x8-loadsplat";

/**
 * Candidates per CPU family and multiply-add, most likely first (the first wins ties, coarse
 * clocks and timings that never settle). V8 gives WASM 15 vector registers on x64: a tile
 * needs MR·NR/4 accumulators, NR/4 B vectors, one A broadcast and, unless the multiply-add is
 * one fused instruction, a product temporary, so 6×8 spills there with mul+add (the plain
 * build; the relaxed build on JavaScriptCore, which does not fuse relaxed_madd) and fits when
 * fused (the relaxed build on V8). arm64 has ~30: room for 8×8 and 4×16.
 */
const CANDIDATES: Record<"x86" | "arm", Record<"fused" | "unfused", string[]>> = {
  x86: {
    unfused: ["5x8-loadsplat", "4x8-loadsplat", "5x8-splat"],
    fused: ["6x8-loadsplat", "5x8-loadsplat", "4x8-loadsplat"],
  },
  arm: {
    unfused: ["8x8-loadsplat", "6x8-loadsplat", "8x8-splat", "4x16-loadsplat"],
    fused: ["8x8-loadsplat", "6x8-loadsplat", "8x8-splat", "4x16-loadsplat"],
  },
};

/** How the kernel was chosen, and what the choice saw. */
export interface GemmKernelChoice extends GemmKernelInfo {
  /** "timed" (fastest candidate at first use), "forced" (PLAIT_GEMM_KERNEL), "deterministic". */
  by: "timed" | "forced" | "deterministic";
  /** The CPU family the default NaN's sign shows (x86 sets it; ARM and others clear it). */
  arch: "x86" | "arm";
  /** Whether the build's multiply-add rounds once here (relaxed_madd fused by the engine). */
  fused: boolean;
  /** GFLOP/s per candidate on the timing problem (timed choices only). */
  timings?: Record<string, number>;
  /** Milliseconds the timing took (timed choices only). */
  selectMs?: number;
  /**
   * Whether the timings settled at optimized-code speed within the time cap (timed choices
   * only). If not (a loaded machine whose background compiles lag), the timings compare
   * baseline-tier code, and the family's first candidate is kept instead of their fastest.
   */
  settled?: boolean;
}

/** The timing problem: m a multiple of every MR, n of every NR; ~0.5 M multiply-adds. */
const PROBE = { m: 120, n: 32, k: 128 };
/**
 * Untimed calls per candidate first: V8 runs a function in its baseline tier (Liftoff, ~10×
 * slower on this code) until a budget of executed code is spent, then compiles it optimized
 * in the background; two probe calls spend a microkernel's budget.
 */
const WARM_CALLS = 2;
/**
 * Timed rounds: at least MIN_ROUNDS, then until every candidate's last call is within SETTLED
 * of its best and its best is under half its first (baseline-tier) call: optimized code arrived.
 */
const MIN_ROUNDS = 3;
const SETTLED = 1.3;
/** Give up waiting for the optimized code after this long (a loaded machine); keep the best so far. */
const CAP_MS = 30;

let chosen: GemmKernelChoice | undefined;

/** The C export name of kernel `name` for input type `type` (f32, bf16, f16). */
export const gemmExport = (type: string, name: string): string => `gemm_${type}_${name.replace("-", "_")}`;

/** This process's f32 GEMM kernel; chosen (and, if timed, timed) on the first call. */
export function gemmKernel(): GemmKernelChoice {
  if (chosen) return chosen;
  const rt = runtime();
  const cpu = probeCpu();
  const forced = readEnv("PLAIT_GEMM_KERNEL")?.trim();
  if (forced !== undefined && forced !== "" && forced !== "auto") {
    chosen = { ...checkGemmKernelName(forced, "PLAIT_GEMM_KERNEL"), by: "forced", ...cpu };
  } else if (rt.deterministic) {
    chosen = { ...checkGemmKernelName(FIXED_GEMM_KERNEL, "FIXED_GEMM_KERNEL"), by: "deterministic", ...cpu };
  } else {
    chosen = timeCandidates(CANDIDATES[cpu.arch][cpu.fused ? "fused" : "unfused"], cpu);
  }
  warm(chosen);
  return chosen;
}

/**
 * Forces a kernel for this thread's later products (undefined: choose again at the next one).
 * For tests and benchmarks that compare kernels; programs use PLAIT_GEMM_KERNEL.
 */
export function setGemmKernel(name: string | undefined): GemmKernelChoice | undefined {
  if (name === undefined) {
    chosen = undefined;
    return undefined;
  }
  chosen = { ...checkGemmKernelName(name, "setGemmKernel(name)"), by: "forced", ...probeCpu() };
  return chosen;
}

/** The CPU family (kernels/c/gemm_arch.c: the default NaN's sign) and whether madd fuses. */
function probeCpu(): { arch: "x86" | "arm"; fused: boolean } {
  const { c } = runtime().k;
  return {
    arch: c.gemm_default_nan_negative(Number.POSITIVE_INFINITY) === 1 ? "x86" : "arm",
    fused: c.gemm_madd_fuses(1 + 2 ** -12, -(1 + 2 ** -11)) === 1,
  };
}

/** The kernel called `name`, or a RangeError naming `what` and listing the kernels. */
export function checkGemmKernelName(name: string, what: string): GemmKernelInfo {
  const info = GEMM_KERNELS.find((k) => k.name === name);
  if (!info) {
    throw new RangeError(
      `plait: ${what} must name a GEMM kernel (${GEMM_KERNELS.map((k) => k.name).join(", ")}, or auto), got ${JSON.stringify(name)}`,
    );
  }
  return info;
}

/** Operands of the timing problem in the arena, filled with small values; freed by `done`. */
function probeBuffers() {
  const { arena, k, memory } = runtime();
  const { m, n, k: depth } = PROBE;
  const a = arena.alloc(m * depth * 4);
  const b = arena.alloc(depth * n * 4);
  const c = arena.alloc(m * n * 4);
  const scratch = arena.alloc(k.c.gemm_f32_scratch_bytes(m, n, depth));
  const view = new Float32Array(memory.buffer);
  for (let i = 0; i < m * depth; i++) view[a / 4 + i] = ((i * 7) % 13) / 13 - 0.5;
  for (let i = 0; i < depth * n; i++) view[b / 4 + i] = ((i * 5) % 11) / 11 - 0.5;
  const done = () => {
    for (const p of [a, b, c, scratch]) arena.free(p);
  };
  return { a, b, c, scratch, done };
}

/** Calls kernel `name` (f32) once on the timing problem. */
function probeCall(name: string, buf: ReturnType<typeof probeBuffers>): void {
  const { m, n, k } = PROBE;
  runtime().k.c[gemmExport("f32", name)](m, n, k, buf.a, k, 1, buf.b, n, 1, buf.c, n, 0, 0, buf.scratch);
}

/** The smallest step performance.now() takes here, in ms. */
function clockTick(): number {
  let tick = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    let t1 = performance.now();
    while (t1 === t0) t1 = performance.now();
    tick = Math.min(tick, t1 - t0);
  }
  return tick;
}

/**
 * Times each candidate on PROBE in interleaved rounds (so a busy spell on a shared machine hits
 * all alike), keeping each one's fastest call, once WARM_CALLS untimed calls each have queued
 * their optimized compiles: MIN_ROUNDS rounds, then more until the times settle at optimized
 * speed for all or CAP_MS (on a loaded machine the background compiles can lag; then the first
 * candidate is kept, as the timings compared baseline-tier code). With a clock coarser than
 * 20 µs (some runtimes coarsen performance.now) timing would be noise, and the first candidate
 * is kept too.
 */
function timeCandidates(names: string[], cpu: { arch: "x86" | "arm"; fused: boolean }): GemmKernelChoice {
  const start = performance.now();
  const buf = probeBuffers();
  const best = new Map<string, number>();
  let settled = false;
  try {
    const baseline = new Map<string, number>(); // each candidate's first call: baseline tier
    for (const name of names) {
      for (let i = 0; i < WARM_CALLS; i++) {
        const t0 = performance.now();
        probeCall(name, buf);
        if (i === 0) baseline.set(name, performance.now() - t0);
      }
    }
    if (clockTick() > 0.02) {
      return {
        ...checkGemmKernelName(names[0], "candidate"),
        by: "timed",
        ...cpu,
        selectMs: performance.now() - start,
      };
    }
    for (let round = 1; ; round++) {
      settled = true;
      for (const name of names) {
        const t0 = performance.now();
        probeCall(name, buf);
        const t = performance.now() - t0;
        const fastest = Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, t);
        best.set(name, fastest);
        if (t > SETTLED * fastest || fastest > baseline.get(name)! / 2) settled = false;
      }
      if (round >= MIN_ROUNDS && (settled || performance.now() - start > CAP_MS)) break;
    }
  } finally {
    buf.done();
  }
  let name = names[0];
  if (settled) for (const n of names) if (best.get(n)! < best.get(name)!) name = n;
  const flop = 2 * PROBE.m * PROBE.n * PROBE.k;
  const timings = Object.fromEntries(names.map((n) => [n, Math.round(flop / best.get(n)! / 1e5) / 10]));
  const selectMs = performance.now() - start;
  return { ...checkGemmKernelName(name, "candidate"), by: "timed", ...cpu, timings, selectMs, settled };
}

/**
 * A few calls of the chosen kernel, so that V8 has queued its optimized compile before the
 * first real product: a large product is one call of the loop nest, and a call that starts in
 * the baseline tier finishes there (wasm has no on-stack replacement); the microkernel and
 * packing functions it calls tier up during it.
 */
function warm(choice: GemmKernelChoice): void {
  if (choice.by === "timed") return; // already called a few times
  const buf = probeBuffers();
  try {
    for (let i = 0; i < WARM_CALLS + 1; i++) probeCall(choice.name, buf);
  } finally {
    buf.done();
  }
}
