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
  /**
   * "loadsplat": v128.load32_splat per A value; "splat": a vector of A and lane shuffles;
   * "addrsplat": loadsplat with each A address computed apart, loaded at offset 0 (for
   * JavaScriptCore, which splits an offset broadcast load into a load and a shuffle).
   */
  scheme: "loadsplat" | "splat" | "addrsplat";
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
  "4x8-addrsplat",
  "5x8-addrsplat",
  "6x8-addrsplat",
].map((name) => {
  const [, mr, nr, scheme] = /^(\d+)x(\d+)-(\w+)$/.exec(name)!;
  return { name, mr: Number(mr), nr: Number(nr), scheme: scheme as GemmKernelInfo["scheme"] };
});

/** Deterministic mode's kernel (and the one the plain gemm_f32/bf16/f16 exports run). */
export const FIXED_GEMM_KERNEL = "4x8-loadsplat";

/**
 * The WASM engine, as far as it shapes the best kernel: V8 with its trap handler (Node: guard
 * pages catch out-of-bounds accesses, so a load is one instruction), V8 without it (Deno: every
 * memory access gets an explicit bounds check, a compare and branch, so kernels with fewer
 * loads per multiply-add win: the "splat" scheme), and JavaScriptCore (Bun: no fused
 * relaxed_madd, and a broadcast load with an offset becomes a load and a shuffle: the
 * "addrsplat" scheme).
 */
export type WasmEngine = "v8" | "v8-bounds-checked" | "jsc";

function wasmEngine(): WasmEngine {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Bun ? "jsc" : g.Deno ? "v8-bounds-checked" : "v8";
}

/**
 * Candidates per CPU family, engine and multiply-add, most likely first (the first wins ties,
 * coarse clocks and timings that never settle); three each on x86, as every candidate is
 * timed only once its optimized code has arrived. V8 gives WASM 15 vector registers on x64: a tile needs
 * MR·NR/4 accumulators, NR/4 B vectors, one A broadcast (two A vectors for "5x8-splat") and,
 * unless the multiply-add is one fused instruction, a product temporary, so 6×8 spills there
 * with mul+add (V8's plain build) and fits when fused (the relaxed build on V8);
 * JavaScriptCore, which does not fuse relaxed_madd, keeps 6×8 in registers all the same. arm64
 * has ~30: room for 8×8 and 4×16. Measured on an AMD EPYC (Zen 3), 256³ on one thread: Node's
 * relaxed build 6x8-loadsplat 42 GFLOP/s, 4x8-splat 26; Deno's 4x8-splat 38, 6x8-loadsplat 31;
 * Bun's 6x8-addrsplat 34, 4x8-splat 29, 4x8-loadsplat 23. (ARM: untested on ARM hardware.)
 */
const ARM_TILES = ["8x8-loadsplat", "6x8-loadsplat", "8x8-splat", "4x16-loadsplat"];
const ARM = { unfused: ARM_TILES, fused: ARM_TILES };
const CANDIDATES: Record<"x86" | "arm", Record<WasmEngine, Record<"fused" | "unfused", string[]>>> = {
  x86: {
    v8: {
      unfused: ["5x8-loadsplat", "4x8-loadsplat", "5x8-splat"],
      fused: ["6x8-loadsplat", "5x8-loadsplat", "4x8-loadsplat"],
    },
    "v8-bounds-checked": {
      unfused: ["4x8-splat", "5x8-splat", "5x8-loadsplat"],
      fused: ["4x8-splat", "5x8-splat", "6x8-loadsplat"],
    },
    jsc: {
      unfused: ["6x8-addrsplat", "5x8-addrsplat", "4x8-splat"],
      fused: ["6x8-addrsplat", "5x8-addrsplat", "4x8-splat"],
    },
  },
  arm: { v8: ARM, "v8-bounds-checked": ARM, jsc: ARM },
};

/** How the kernel was chosen, and what the choice saw. */
export interface GemmKernelChoice extends GemmKernelInfo {
  /** "timed" (fastest candidate at first use), "forced" (PLAIT_GEMM_KERNEL), "deterministic". */
  by: "timed" | "forced" | "deterministic";
  /** The CPU family the default NaN's sign shows (x86 sets it; ARM and others clear it). */
  arch: "x86" | "arm";
  /** Whether the build's multiply-add rounds once here (relaxed_madd fused by the engine). */
  fused: boolean;
  /** The engine, which orders the candidates. */
  engine: WasmEngine;
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
  /**
   * Whether this choice comes from timing again at a later product (timed choices only): a
   * first timing that did not settle keeps the first candidate and is repeated once the
   * optimized code has had time to arrive (RETRY_AFTER_MS, up to RETRIES times).
   */
  retimed?: boolean;
}

/**
 * The timing problem: m a multiple of every MR, n of every NR; ~1 M multiply-adds. With n = 32
 * the packing of A outweighed the tile loop and every kernel timed alike (~19 GFLOP/s on an AMD
 * EPYC); from n = 64 the timings rank the kernels as 256³ products do.
 */
const PROBE = { m: 120, n: 64, k: 128 };
/**
 * Untimed calls per candidate first: V8 runs a function in its baseline tier (Liftoff, ~10×
 * slower on this code) until a budget of executed code is spent, then compiles it optimized
 * in the background; two probe calls spend a microkernel's budget (the first call also compiles
 * the baseline code, so the later ones time the baseline tier).
 */
const WARM_CALLS = 3;
/**
 * Timed rounds until SETTLED_ROUNDS rounds in which every candidate ran optimized code: its best
 * call at least TIERED[engine] times faster than its fastest untimed call after the first (the
 * first also compiles), and this call within SETTLED of its best. V8's baseline tier (Liftoff)
 * runs this code 4–6× slower than its optimized code. JavaScriptCore has three tiers (an
 * interpreter ~10× slower, BBQ ~2×, then OMG), so a ratio that separates BBQ from OMG must be
 * counted from the interpreter: 6×; if the untimed calls already ran BBQ, it never settles and
 * the first candidate is kept. Each candidate keeps its fastest call.
 */
const SETTLED_ROUNDS = 4;
const TIERED: Record<WasmEngine, number> = { v8: 2.5, "v8-bounds-checked": 2.5, jsc: 6 };
const SETTLED = 1.3;
/**
 * Give up waiting for the optimized code after this long and keep the first candidate for now:
 * the first product should not stall for it (V8's optimized code for these functions arrives
 * 15–40 ms after their first call on a 2-vCPU machine, JavaScriptCore's later).
 */
const CAP_MS = 15;
/** A timing that did not settle runs again at the first product this long after, up to RETRIES times. */
const RETRY_AFTER_MS = 100;
const RETRIES = 3;

let chosen: GemmKernelChoice | undefined;
/** An unsettled timing to repeat: its candidates, their baseline-tier times, when, how often. */
let retry:
  | { names: string[]; cpu: ReturnType<typeof probeCpu>; baseline: Map<string, number>; at: number; left: number }
  | undefined;

/** The C export name of kernel `name` for input type `type` (f32, bf16, f16). */
export const gemmExport = (type: string, name: string): string => `gemm_${type}_${name.replace("-", "_")}`;

/**
 * This process's f32 GEMM kernel: chosen (and, if timed, timed) on the first call; a timing that
 * did not settle is repeated at a later call (the first candidate runs meanwhile). Every kernel
 * gives the same bits, so a change of kernel between products changes only speed.
 */
export function gemmKernel(): GemmKernelChoice {
  if (retry !== undefined && performance.now() >= retry.at) timeAgain(retry);
  if (chosen) return chosen;
  const rt = runtime();
  const cpu = probeCpu();
  const forced = readEnv("PLAIT_GEMM_KERNEL")?.trim();
  if (forced !== undefined && forced !== "" && forced !== "auto") {
    chosen = { ...checkGemmKernelName(forced, "PLAIT_GEMM_KERNEL"), by: "forced", ...cpu };
  } else if (rt.deterministic) {
    chosen = { ...checkGemmKernelName(FIXED_GEMM_KERNEL, "FIXED_GEMM_KERNEL"), by: "deterministic", ...cpu };
  } else {
    const names = CANDIDATES[cpu.arch][cpu.engine][cpu.fused ? "fused" : "unfused"];
    const { choice, baseline } = timeCandidates(names, cpu);
    chosen = choice;
    if (!choice.settled && baseline) {
      retry = { names, cpu, baseline, at: performance.now() + RETRY_AFTER_MS, left: RETRIES };
    }
  }
  warm(chosen);
  return chosen;
}

/** Times an unsettled choice's candidates again against their first baseline-tier times. */
function timeAgain(r: NonNullable<typeof retry>): void {
  const { choice } = timeCandidates(r.names, r.cpu, r.baseline);
  r.left--;
  if (choice.settled || r.left === 0) {
    retry = undefined;
    chosen = { ...choice, retimed: true };
  } else {
    r.at = performance.now() + RETRY_AFTER_MS;
  }
}

/**
 * Forces a kernel for this thread's later products (undefined: choose again at the next one).
 * For tests and benchmarks that compare kernels; programs use PLAIT_GEMM_KERNEL.
 */
export function setGemmKernel(name: string | undefined): GemmKernelChoice | undefined {
  retry = undefined;
  if (name === undefined) {
    chosen = undefined;
    return undefined;
  }
  chosen = { ...checkGemmKernelName(name, "setGemmKernel(name)"), by: "forced", ...probeCpu() };
  return chosen;
}

/** The CPU family (kernels/c/gemm_arch.c: the default NaN's sign) and whether madd fuses. */
function probeCpu(): { arch: "x86" | "arm"; fused: boolean; engine: WasmEngine } {
  const { c } = runtime().k;
  return {
    engine: wasmEngine(),
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
 * their optimized compiles, until SETTLED_ROUNDS rounds have run every candidate's optimized
 * code, or CAP_MS (on a loaded machine the background compiles can lag; then the first
 * candidate is kept, as the timings compared baseline-tier code). With a clock coarser than
 * 20 µs (some runtimes coarsen performance.now) timing would be noise, and the first candidate
 * is kept too.
 */
function timeCandidates(
  names: string[],
  cpu: ReturnType<typeof probeCpu>,
  firstBaseline?: Map<string, number>,
): { choice: GemmKernelChoice; baseline?: Map<string, number> } {
  const start = performance.now();
  const buf = probeBuffers();
  const best = new Map<string, number>();
  let settled = false;
  // each candidate's fastest baseline-tier call (a repeat reuses the first timing's)
  const baseline = firstBaseline ?? new Map<string, number>();
  try {
    for (const name of firstBaseline ? [] : names) {
      for (let i = 0; i < WARM_CALLS; i++) {
        const t0 = performance.now();
        probeCall(name, buf);
        if (i > 0) baseline.set(name, Math.min(baseline.get(name) ?? Number.POSITIVE_INFINITY, performance.now() - t0));
      }
    }
    if (clockTick() > 0.02) {
      const choice = checkGemmKernelName(names[0], "candidate");
      return { choice: { ...choice, by: "timed", ...cpu, selectMs: performance.now() - start } };
    }
    for (let optimizedRounds = 0; !settled; ) {
      let optimized = true;
      for (const name of names) {
        const t0 = performance.now();
        probeCall(name, buf);
        const t = performance.now() - t0;
        const fastest = Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, t);
        best.set(name, fastest);
        if (t > SETTLED * fastest || fastest * TIERED[cpu.engine] > baseline.get(name)!) optimized = false;
      }
      if (optimized) optimizedRounds++;
      settled = optimizedRounds >= SETTLED_ROUNDS;
      if (performance.now() - start > CAP_MS) break;
    }
  } finally {
    buf.done();
  }
  let name = names[0];
  if (settled) for (const n of names) if (best.get(n)! < best.get(name)!) name = n;
  const flop = 2 * PROBE.m * PROBE.n * PROBE.k;
  const timings = Object.fromEntries(names.map((n) => [n, Math.round(flop / best.get(n)! / 1e5) / 10]));
  const selectMs = performance.now() - start;
  return {
    choice: { ...checkGemmKernelName(name, "candidate"), by: "timed", ...cpu, timings, selectMs, settled },
    baseline,
  };
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
