// A system BLAS (OpenBLAS, or any library with the CBLAS interface) as the CPU fast path of the
// GEMM: cblas_sgemm and cblas_dgemm called on tensors in plait's shared WebAssembly.Memory. The
// operands go across as typed-array views of that memory, which koffi passes as pointers: no copy.
// The contract is core.matmul's (src/core/gemm.ts: checkGemm): NN/NT/TN/TT, bias, accumulate, the
// same error bound; core.matmul stays the WASM kernel and the reference.
import { bytesOf, type DType } from "../src/core/dtype.ts";
import { checkGemm, type GemmOptions } from "../src/core/gemm.ts";
import { parallelFor } from "../src/core/parallel.ts";
import { configuredBlas, deterministic, runtime } from "../src/core/runtime.ts";
import type { Tensor } from "../src/core/tensor.ts";
import { type Attempt, LibraryError, type LibraryMode, libraryMode, openLibrary } from "./find.ts";
import type { NativeFunction, NativeLibrary } from "./native.ts";

export const BLAS_SPEC = {
  name: "BLAS",
  env: "PLAIT_BLAS",
  sonames: ["libopenblas.so.0", "libcblas.so.3"],
  pattern: /^libopenblas[po]?\.so(\.\d+)*$/,
  install:
    "apt-get install libopenblas0-pthread (Debian/Ubuntu; dnf install openblas on Fedora), or PLAIT_BLAS=/path/to/libopenblas.so",
} as const;

const REQUIRED = ["cblas_sgemm", "cblas_dgemm"];
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** What is known about the BLAS in this process, for `plait env` and error messages. */
export interface BlasStatus {
  /** The mode asked for: configure({ blas }), else PLAIT_BLAS, else auto. */
  mode: string;
  found: boolean;
  usable: boolean;
  /** Whether matmul/linear use it for f32 and f64 (usable and not off). */
  inUse: boolean;
  /** Why it is not found, not usable or not in use; null when in use. */
  reason: string | null;
  path: string | null;
  via: string | null;
  vendor: string | null;
  version: string | null;
  /** openblas_get_config(), e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
  config: string | null;
  /** The CPU kernel OpenBLAS picked (openblas_get_corename), e.g. "Zen", "Haswell", "SkylakeX". */
  corename: string | null;
  /** The library's thread count now (plait sets it to the kernel thread count at each product); null where it cannot say. */
  threads: number | null;
  /** Dtypes the BLAS path takes (bf16 only with cblas_sbgemm, not yet wired). */
  dtypes: DType[];
  sbgemm: boolean;
  tried: readonly Attempt[];
}

interface Bound {
  path: string;
  via: string;
  tried: readonly Attempt[];
  sgemm: NativeFunction;
  dgemm: NativeFunction;
  getThreads?: NativeFunction;
  setThreads?: NativeFunction;
  config: string | null;
  corename: string | null;
  sbgemm: boolean;
}

/** The library for one mode, or the error that mode gave; resolved once per mode per thread. */
let state: { key: string; mode: LibraryMode; bound?: Bound; error?: LibraryError } | undefined;

/**
 * The current mode's library: configure({ blas }), else PLAIT_BLAS, read on every call (a property
 * read, next to a product's microseconds) and resolved again only when it changed.
 */
function current(): NonNullable<typeof state> {
  const mode = libraryMode(BLAS_SPEC, configuredBlas(), "configure({ blas })");
  const key = mode.kind === "auto" ? "auto" : `${mode.kind}:${mode.from}:${mode.kind === "path" ? mode.path : ""}`;
  if (state?.key === key) return state;
  try {
    state = { key, mode, bound: bind(mode) };
  } catch (e) {
    if (!(e instanceof LibraryError)) throw e;
    state = { key, mode, error: e };
  }
  return state;
}

function bind(mode: LibraryMode): Bound {
  let config: string | null = null;
  const found = openLibrary(BLAS_SPEC, mode, REQUIRED, (lib) => {
    config = lib.has("openblas_get_config") ? String(lib.func("const char *openblas_get_config(void)")() ?? "") : null;
    if (config?.includes("USE64BITINT")) {
      throw new Error(
        `is built with 64-bit integers (${config}); plait calls the 32-bit-integer (LP64) CBLAS interface`,
      );
    }
    checkProduct(lib);
  });
  const { lib } = found;
  const has = (s: string) => lib.has(s);
  return {
    path: found.path,
    via: found.via,
    tried: found.tried,
    sgemm: lib.func(
      "void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)",
    ),
    dgemm: lib.func(
      "void cblas_dgemm(int order, int transA, int transB, int m, int n, int k, double alpha, const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc)",
    ),
    getThreads: has("openblas_get_num_threads") ? lib.func("int openblas_get_num_threads(void)") : undefined,
    setThreads: has("openblas_set_num_threads") ? lib.func("void openblas_set_num_threads(int n)") : undefined,
    config,
    corename: has("openblas_get_corename") ? String(lib.func("const char *openblas_get_corename(void)")()) : null,
    sbgemm: has("cblas_sbgemm"),
  };
}

/**
 * A 2×3 · 3×2 product with known integer result, in memory outside the JS heap: a library with
 * another calling convention or integer width gives garbage or crashes here, once, not later.
 */
function checkProduct(lib: NativeLibrary): void {
  const sgemm = lib.func(
    "void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)",
  );
  const buf = new Float32Array(new SharedArrayBuffer(16 * 4));
  buf.set([1, 2, 3, 4, 5, 6], 0);
  buf.set([7, 8, 9, 10, 11, 12], 6);
  sgemm(
    ROW_MAJOR,
    NO_TRANS,
    NO_TRANS,
    2,
    2,
    3,
    1,
    buf.subarray(0, 6),
    3,
    buf.subarray(6, 12),
    2,
    0,
    buf.subarray(12),
    2,
  );
  const got = [...buf.subarray(12)];
  if (got.join() !== [58, 64, 139, 154].join()) {
    throw new Error(`gave [${got.join(", ")}] for a 2×3·3×2 product whose result is [58, 64, 139, 154] (wrong ABI?)`);
  }
}

/**
 * The BLAS matmul for `dtype` if the current mode has one in use, else undefined (the caller runs
 * the WASM kernels). Never throws in auto mode; an explicit path that cannot be used throws its
 * LibraryError here, at the first product, naming the library, the path and the reason.
 */
export function blasFor(dtype: DType): typeof blasMatmul | undefined {
  if (dtype !== "f32" && dtype !== "f64") return undefined;
  // Deterministic mode: the WASM GEMM (configure() and the runtime's start refuse an explicit library).
  if (deterministic()) return undefined;
  const s = current();
  if (s.bound) return blasMatmul;
  if (s.mode.kind === "path") throw s.error;
  return undefined;
}

/**
 * C = op(a)·op(b) (+ bias) on the system BLAS, for f32 or f64 operands: the arguments, options
 * and errors of core.matmul (without f16/bf16). Throws LibraryError when no BLAS is usable.
 */
export function blasMatmul(a: Tensor, b: Tensor, opts?: GemmOptions): Tensor {
  const { bound, error } = current();
  if (!bound) throw error;
  const { m, n, k, transA, transB, bias, accumulate, threads, c } = checkGemm(a, b, opts);
  if (a.dtype !== "f32" && a.dtype !== "f64") {
    throw new TypeError(
      `plait: matmul on the BLAS (${bound.path}): dtype ${a.dtype} is not supported; f32 and f64 are`,
    );
  }
  if (m === 0 || n === 0) return c;
  const rt = runtime();
  setThreads(bound, Math.min(threads ?? rt.threads, rt.threads));
  const buffer = rt.memory.buffer;
  const View = a.dtype === "f32" ? Float32Array : Float64Array;
  const view = (arg: string, t: Tensor) => new View(buffer, inMemory(arg, t, buffer.byteLength, bound.path), t.size);
  const gemm = a.dtype === "f32" ? bound.sgemm : bound.dgemm;
  gemm(
    ROW_MAJOR,
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    m,
    n,
    k,
    1,
    view("a", a),
    Math.max(1, transA ? m : k),
    view("b", b),
    Math.max(1, transB ? k : n),
    accumulate ? 1 : 0,
    view("out", c),
    n,
  );
  if (bias) addBias(c, bias, m, n);
  return c;
}

/** The tensor's byte offset, checked to lie inside the memory the views are made over. */
function inMemory(arg: string, t: Tensor, bytes: number, path: string): number {
  const ptr = t.ptr;
  if (!(Number.isInteger(ptr) && ptr >= 0 && ptr + t.byteLength <= bytes)) {
    throw new RangeError(
      `plait: matmul on the BLAS (${path}): argument ${arg} (${t.describe()}) at byte ${ptr} lies outside plait's WebAssembly.Memory (${bytes} bytes); only tensors made by plait can be passed to a native library`,
    );
  }
  return ptr;
}

/** c[i, :] += bias, in place (the add_rows kernel, split across the pool for large C). */
function addBias(c: Tensor, bias: Tensor, rows: number, cols: number): void {
  const rowBytes = cols * bytesOf(c.dtype);
  const cp = c.ptr;
  const bp = bias.ptr;
  parallelFor(`as.add_rows_${c.dtype}`, rows, (r, cnt) => [cp + r * rowBytes, bp, cp + r * rowBytes, cnt, cols], {
    minElements: Math.ceil((1 << 17) / Math.max(cols, 1)),
    align: 1,
  });
}

/**
 * OpenBLAS's thread count is one setting per process: it is set only when it differs from the
 * wanted one, so ranks (worker threads) that all want the same count set it at most once.
 */
function setThreads(bound: Bound, n: number): void {
  if (bound.setThreads && bound.getThreads && bound.getThreads() !== n) bound.setThreads(n);
}

/**
 * Which system BLAS matmul and linear use for f32/f64 under the current mode (configure({ blas }),
 * else PLAIT_BLAS, else auto), or why none: the BLAS entry of `plait env`. Never throws; loads
 * koffi and the library if no product has yet (not in off mode).
 */
export function blasStatus(): BlasStatus {
  const s = current();
  const mode = s.mode.kind === "path" ? s.mode.path : s.mode.kind;
  const b = s.bound;
  const det = deterministic();
  const threads = b?.getThreads ? Number(b.getThreads()) : null;
  const version = b?.config ? (/OpenBLAS\s+([\d.]+)/.exec(b.config)?.[1] ?? null) : null;
  return {
    mode,
    found: b !== undefined || (s.error !== undefined && s.error.kind === "unusable"),
    usable: b !== undefined,
    inUse: b !== undefined && !det,
    reason: det
      ? "deterministic mode is on (configure({ deterministic }) / PLAIT_DETERMINISTIC): no system BLAS"
      : b
        ? null
        : (s.error?.message.replace(/^plait: BLAS: /, "") ?? null),
    path: b?.path ?? null,
    via: b?.via ?? null,
    vendor: b ? (b.config?.startsWith("OpenBLAS") ? "OpenBLAS" : "unknown (CBLAS)") : null,
    version,
    config: b?.config ?? null,
    corename: b?.corename ?? null,
    threads,
    dtypes: b ? ["f32", "f64"] : [],
    sbgemm: b?.sbgemm ?? false,
    tried: b?.tried ?? s.error?.tried ?? [],
  };
}

/** For tests: forget the resolved library so the next call reads the mode again. */
export function forgetBlas(): void {
  state = undefined;
}
