// matmul: the GEMM kernels (kernels/c/gemm_*.c) behind argument checks and a thread split;
// the f32-family kernel (f32, bf16, f16 inputs) is the process's choice (gemmKernel.ts), the
// same export on every pool thread.

import type { Arena } from "./arena.ts";
import { bytesOf, type DType } from "./dtype.ts";
import { type GemmKernelChoice, gemmExport, gemmKernel } from "./gemmKernel.ts";
import { checkOptions } from "./options.ts";
import { runtime } from "./runtime.ts";
import { checkTensor, shapeStr, Tensor } from "./tensor.ts";

export interface GemmOptions {
  /** Use aᵀ: a is stored [k, m]. */
  transA?: boolean;
  /** Use bᵀ: b is stored [n, k]. */
  transB?: boolean;
  /** A row of length n (of the output dtype) added to every row of the product. */
  bias?: Tensor;
  /** Where to write the [m, n] result (output dtype); a new tensor when absent. */
  out?: Tensor;
  /** With `out`: out += op(a)·op(b) (+ bias) instead of overwriting it. */
  accumulate?: boolean;
  /** At most this many pool threads (default: all); small products use one regardless. */
  threads?: number;
}

interface GemmKernel {
  /** The C export's type part: gemm_<type>_<kernel> (f32, bf16, f16), or the whole name (f64). */
  type: string;
  scratchBytes: string;
  out: DType;
  /** Whether the f32 kernel choice (gemmKernel.ts) applies; f64 has one kernel. */
  chosen: boolean;
}

const GEMM_OPTIONS = ["transA", "transB", "bias", "out", "accumulate", "threads"] as const;

/** Input dtype (a and b alike) → kernel; the 16-bit types widen to f32 while packing. */
const KERNELS: Partial<Record<DType, GemmKernel>> = {
  f32: { type: "f32", scratchBytes: "gemm_f32_scratch_bytes", out: "f32", chosen: true },
  bf16: { type: "bf16", scratchBytes: "gemm_f32_scratch_bytes", out: "f32", chosen: true },
  f16: { type: "f16", scratchBytes: "gemm_f32_scratch_bytes", out: "f32", chosen: true },
  f64: { type: "gemm_f64", scratchBytes: "gemm_f64_scratch_bytes", out: "f64", chosen: false },
};

/**
 * Multiply-adds each thread should get at least; smaller products stay on one thread, since
 * waking a pool thread costs ~15 µs when it sleeps and ~1 µs when it spins.
 */
const GEMM_MIN_MACS_PER_THREAD = 1 << 19;

/** The f64 kernel's register tile (kernels/c/gemm_f64.h); the f32 kernels' come with the choice. */
const F64_TILE = { mr: 4, nr: 4 };

/** The chosen kernel's export names per input type, made once per choice (no per-call strings). */
let exportNames = { choice: undefined as GemmKernelChoice | undefined, names: new Map<string, string>() };

function exportOf(type: string, choice: GemmKernelChoice): string {
  if (exportNames.choice !== choice) exportNames = { choice, names: new Map() };
  let name = exportNames.names.get(type);
  if (name === undefined) {
    name = gemmExport(type, choice.name);
    exportNames.names.set(type, name);
  }
  return name;
}

/**
 * C = op(a)·op(b) (+ bias), op(x) = xᵀ where asked, for 2-D a and b of one dtype: f32 → f32,
 * f64 → f64, bf16 → f32 and f16 → f32 (f32 accumulation). Large products are split across
 * the kernel pool by rows or columns of C; each thread packs only its own share.
 */
export function matmul(a: Tensor, b: Tensor, opts?: GemmOptions): Tensor {
  const { m, n, k, transA, transB, bias, accumulate, threads, c } = checkGemm(a, b, opts);
  if (m === 0 || n === 0) return c;
  const kernel = KERNELS[a.dtype]!;
  const { arena, k: kernels, pool } = runtime();
  const choice = kernel.chosen ? gemmKernel() : undefined; // once: a repeated timing may change it
  const tile = choice ?? F64_TILE;
  const fn = choice ? exportOf(kernel.type, choice) : kernel.type;
  const e = bytesOf(a.dtype);
  const o = bytesOf(kernel.out);
  // A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j*csb], in elements.
  const [rsa, csa] = transA ? [1, m] : [k, 1];
  const [rsb, csb] = transB ? [1, k] : [n, 1];
  const shares = split(m, n, k, Math.min(pool.size, threads ?? pool.size), tile);
  const scratchBytes = kernels.c[kernel.scratchBytes] as (m: number, n: number, k: number) => number;
  const perThread = alignUp(Math.max(...shares.map((s) => scratchBytes(s.rows, s.cols, k))));
  const scratch = scratchFor(arena, perThread * shares.length);
  const argsFor = (s: Share, t: number) => [
    s.rows,
    s.cols,
    k,
    a.ptr + s.row * rsa * e,
    rsa,
    csa,
    b.ptr + s.col * csb * e,
    rsb,
    csb,
    c.ptr + (s.row * n + s.col) * o,
    n,
    bias === undefined ? 0 : bias.ptr + s.col * o,
    accumulate ? 1 : 0,
    scratch + t * perThread,
  ];
  if (shares.length === 1) kernels.c[fn](...argsFor(shares[0], 0));
  else pool.run(shares.map((s, t) => ({ fn: `c.${fn}`, args: argsFor(s, t) })));
  return c;
}

/** A product's checked arguments, and the tensor C is written to (`out`, or a new one). */
export interface GemmPlan {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  bias: Tensor | undefined;
  accumulate: boolean;
  threads: number | undefined;
  c: Tensor;
}

/**
 * matmul's argument checks, shared with every other GEMM backend (the system BLAS in
 * ffi/blas.ts) so that each takes the same arguments and fails with the same errors. Makes C
 * when no `out` is given.
 */
export function checkGemm(a: Tensor, b: Tensor, opts?: GemmOptions): GemmPlan {
  const {
    transA = false,
    transB = false,
    bias,
    out,
    accumulate = false,
    threads,
  } = checkOptions("matmul", opts, GEMM_OPTIONS);
  checkMatrix("a", a);
  checkMatrix("b", b);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new RangeError(`plait: matmul: option threads must be a positive integer, got ${threads}`);
  }
  const kernel = KERNELS[a.dtype];
  if (a.dtype !== b.dtype || kernel === undefined) {
    throw new TypeError(
      `plait: matmul: arguments a (${a.dtype}) and b (${b.dtype}) are not a supported pair; supported: f32×f32, f64×f64, bf16×bf16, f16×f16`,
    );
  }
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kb) {
    throw new RangeError(
      `plait: matmul: inner dimensions differ: a ${shapeStr(a.shape)}${transA ? " (transposed)" : ""} gives k = ${k}, b ${shapeStr(b.shape)}${transB ? " (transposed)" : ""} gives k = ${kb}`,
    );
  }
  if (bias !== undefined) checkOperand("bias", bias, [n], kernel.out);
  if (out !== undefined) {
    checkOperand("out", out, [m, n], kernel.out);
    if (out === a || out === b)
      throw new Error("plait: matmul: argument out must not be a or b (they are read while out is written)");
  } else if (accumulate) {
    throw new Error("plait: matmul: accumulate: true needs an out tensor to accumulate into");
  }
  return { m, n, k, transA, transB, bias, accumulate, threads, c: out ?? new Tensor([m, n], kernel.out) };
}

/**
 * The packing buffers, one slice per thread, kept between calls: a call's need is bounded by
 * the kernels' cache blocks ((mc + nc)·kc elements, ~1.4 MB per thread), so the block stops
 * growing after the first large product and no call pays for allocation.
 */
let scratchBlock = { arena: undefined as Arena | undefined, ptr: 0, bytes: 0 };

function scratchFor(arena: Arena, bytes: number): number {
  if (scratchBlock.arena !== arena || scratchBlock.bytes < bytes) {
    if (scratchBlock.arena === arena) arena.free(scratchBlock.ptr);
    scratchBlock = { arena, ptr: arena.alloc(bytes), bytes };
  }
  return scratchBlock.ptr;
}

interface Share {
  row: number;
  rows: number;
  col: number;
  cols: number;
}

/**
 * Cuts C into at most `threads` equal slabs along its longer side (in whole register tiles),
 * one per thread, with at least GEMM_MIN_MACS_PER_THREAD multiply-adds each. Where the cuts
 * fall changes no element's sum, only which thread computes it.
 */
function split(m: number, n: number, k: number, threads: number, tile: { mr: number; nr: number }): Share[] {
  const ROW_UNIT = tile.mr;
  const COL_UNIT = tile.nr;
  const byRows = m >= n;
  const units = byRows ? Math.ceil(m / ROW_UNIT) : Math.ceil(n / COL_UNIT);
  const parts = Math.max(1, Math.min(threads, units, Math.floor((m * n * Math.max(k, 1)) / GEMM_MIN_MACS_PER_THREAD)));
  const shares: Share[] = [];
  for (let t = 0; t < parts; t++) {
    const from = Math.floor((units * t) / parts);
    const to = Math.floor((units * (t + 1)) / parts);
    if (byRows) {
      const row = from * ROW_UNIT;
      shares.push({ row, rows: Math.min(m, to * ROW_UNIT) - row, col: 0, cols: n });
    } else {
      const col = from * COL_UNIT;
      shares.push({ row: 0, rows: m, col, cols: Math.min(n, to * COL_UNIT) - col });
    }
  }
  return shares;
}

const alignUp = (bytes: number) => Math.ceil(bytes / 64) * 64;

function checkMatrix(arg: string, x: unknown): asserts x is Tensor {
  const t = checkTensor("matmul", arg, x);
  if (t.ndim !== 2) throw new RangeError(`plait: matmul: argument ${arg} must be 2-D, got shape ${shapeStr(t.shape)}`);
}

function checkOperand(arg: string, x: unknown, shape: number[], dtype: DType): asserts x is Tensor {
  const t = checkTensor("matmul", arg, x);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(
      `plait: matmul: argument ${arg} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)} for this product`,
    );
  }
  if (t.dtype !== dtype) {
    throw new TypeError(`plait: matmul: argument ${arg} has dtype ${t.dtype}, expected ${dtype} (the output dtype)`);
  }
}
