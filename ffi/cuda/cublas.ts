// matmul on a CUDA device through cuBLAS: cublasSgemm_v2 for f32, cublasGemmEx for f16/bf16
// operands (f32 output, f32 compute), with core.matmul's contract: NN/NT/TN/TT, bias, out,
// accumulate. cuBLAS is column-major; plait's tensors are row-major. A row-major [r, c] matrix is
// the column-major [c, r] matrix, its transpose, so C = op(A)·op(B) is computed as
// Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS's first operand is b, its second a, and m and n swap (gemmArgs).

import { CudaTensor, checkSameDevice } from "../../src/core/device.ts";
import type { DType } from "../../src/core/dtype.ts";
import { checkOptions } from "../../src/core/options.ts";
import { shapeStr, typeName } from "../../src/core/tensor.ts";
import { CUBLAS_SPEC } from "../cuda.ts";
import { libraryMode, openLibrary } from "../find.ts";
import {
  CUBLAS,
  CUBLAS_COMPUTE_32F,
  CUBLAS_GEMM_DEFAULT,
  CUBLAS_OP_N,
  CUBLAS_OP_T,
  CUDA_R_16BF,
  CUDA_R_16F,
  CUDA_R_32F,
} from "./api.ts";
import { deviceStream } from "./backend.ts";
import { CUBLAS_STATUS, CudaError } from "./errors.ts";
import { gridFor, launchKernel } from "./kernels.ts";
import { type Bound, bindAll, memsetAsync } from "./runtime.ts";

/** The arguments of one column-major cuBLAS GEMM call for a row-major product. */
export interface CublasGemmArgs {
  opA: number;
  opB: number;
  m: number;
  n: number;
  k: number;
  /** Which plait operand is cuBLAS's A (always "b") and B (always "a"). */
  A: "b";
  lda: number;
  B: "a";
  ldb: number;
  ldc: number;
}

/**
 * For row-major C[m, n] = op(a)·op(b) with a stored [m, k] ([k, m] when transA) and b stored
 * [k, n] ([n, k] when transB): the column-major call computing Cᵀ[n, m] = op(b)ᵀ·op(a)ᵀ.
 * b's bytes read column-major are bᵀ: already op(b)ᵀ when !transB (no op, ld = n), else op(b)
 * (op T, ld = k). Likewise a: op N with ld = k, or op T with ld = m. Leading dimensions are at
 * least 1, as cuBLAS requires even for empty matrices.
 */
export function gemmArgs(m: number, n: number, k: number, transA: boolean, transB: boolean): CublasGemmArgs {
  return {
    opA: transB ? CUBLAS_OP_T : CUBLAS_OP_N,
    opB: transA ? CUBLAS_OP_T : CUBLAS_OP_N,
    m: n,
    n: m,
    k,
    A: "b",
    lda: Math.max(1, transB ? k : n),
    B: "a",
    ldb: Math.max(1, transA ? m : k),
    ldc: Math.max(1, n),
  };
}

interface Cublas {
  path: string;
  fn: Bound<typeof CUBLAS>;
  handles: Map<number, bigint>;
}

let loaded: Cublas | undefined;

/** Opens cuBLAS on first use (LibraryError naming every path tried when it cannot). */
export function cublas(): Cublas {
  if (loaded) return loaded;
  const found = openLibrary(CUBLAS_SPEC, libraryMode(CUBLAS_SPEC), Object.keys(CUBLAS));
  loaded = { path: found.path, fn: bindAll(found.lib, CUBLAS), handles: new Map() };
  return loaded;
}

/** Throws CudaError for a non-zero cublasStatus_t. */
export function checkCublas(rc: number, call: string, context?: string): void {
  if (rc === 0) return;
  const { fn } = cublas();
  const name = String(fn.cublasGetStatusName(rc) ?? CUBLAS_STATUS[rc] ?? "unknown cublasStatus_t");
  throw new CudaError(call, "cublas", rc, name, String(fn.cublasGetStatusString(rc) ?? ""), context);
}

/** The cuBLAS handle of device `index`, bound to plait's stream for that device. */
export function cublasHandle(index: number): bigint {
  const lib = cublas();
  const stream = deviceStream(index);
  let h = lib.handles.get(index);
  if (h === undefined) {
    const box = [0];
    checkCublas(lib.fn.cublasCreate_v2(box), "cublasCreate_v2", `opening cuBLAS on cuda:${index}`);
    h = BigInt(box[0]);
    checkCublas(lib.fn.cublasSetStream_v2(h, stream), "cublasSetStream_v2");
    lib.handles.set(index, h);
  }
  return h;
}

export interface CudaGemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** A row [n] (f32) added to every row of the product. */
  bias?: CudaTensor;
  /** Where to write the f32 [m, n] result; a new tensor when absent. */
  out?: CudaTensor;
  /** With `out`: out += op(a)·op(b) (+ bias). */
  accumulate?: boolean;
}

const OPTIONS = ["transA", "transB", "bias", "out", "accumulate"] as const;
const TYPES: Partial<Record<DType, number>> = { f32: CUDA_R_32F, f16: CUDA_R_16F, bf16: CUDA_R_16BF };

function checkCuda(arg: string, x: unknown): CudaTensor {
  if (!(x instanceof CudaTensor)) {
    const what = x !== null && typeof x === "object" && "device" in x ? `a tensor on ${String(x.device)}` : typeName(x);
    throw new TypeError(`plait: matmul: argument ${arg} must be a tensor on a CUDA device, got ${what}`);
  }
  if (x.disposed) throw new Error(`plait: matmul: argument ${arg} (${x.describe()}) was used after dispose()`);
  return x;
}

/**
 * C = op(a)·op(b) (+ bias) for 2-D CUDA tensors on one device: f32×f32, f16×f16 or bf16×bf16,
 * always an f32 result with f32 accumulation. Queued on the device's stream; returns at once.
 */
export function cudaMatmul(a: CudaTensor, b: CudaTensor, opts?: CudaGemmOptions): CudaTensor {
  const { transA = false, transB = false, bias, out, accumulate = false } = checkOptions("matmul", opts, OPTIONS);
  checkCuda("a", a);
  checkCuda("b", b);
  if (bias !== undefined) checkCuda("bias", bias);
  if (out !== undefined) checkCuda("out", out);
  checkSameDevice("matmul", [
    ["a", a],
    ["b", b],
    ["bias", bias],
    ["out", out],
  ]);
  for (const [arg, t] of [
    ["a", a],
    ["b", b],
  ] as const) {
    if (t.ndim !== 2)
      throw new RangeError(`plait: matmul: argument ${arg} must be 2-D, got shape ${shapeStr(t.shape)}`);
  }
  const type = TYPES[a.dtype];
  if (a.dtype !== b.dtype || type === undefined) {
    throw new TypeError(
      `plait: matmul on ${a.device}: arguments a (${a.dtype}) and b (${b.dtype}) are not a supported pair; supported: f32×f32, bf16×bf16, f16×f16`,
    );
  }
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kb) {
    throw new RangeError(
      `plait: matmul: inner dimensions differ: a ${shapeStr(a.shape)}${transA ? " (transposed)" : ""} gives k = ${k}, b ${shapeStr(b.shape)}${transB ? " (transposed)" : ""} gives k = ${kb}`,
    );
  }
  const expect = (arg: string, t: CudaTensor, shape: number[]) => {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new RangeError(
        `plait: matmul: argument ${arg} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)} for this product`,
      );
    if (t.dtype !== "f32")
      throw new TypeError(`plait: matmul: argument ${arg} has dtype ${t.dtype}, expected f32 (the output dtype)`);
  };
  if (bias) expect("bias", bias, [n]);
  if (out) {
    expect("out", out, [m, n]);
    if (out === a || out === b)
      throw new Error("plait: matmul: argument out must not be a or b (they are read while out is written)");
  } else if (accumulate) throw new Error("plait: matmul: accumulate: true needs an out tensor to accumulate into");
  const dev = a.deviceIndex;
  const c = out ?? new CudaTensor([m, n], "f32", dev);
  if (m === 0 || n === 0) return c;
  const stream = deviceStream(dev);
  if (k === 0) {
    if (!accumulate) memsetAsync(c.ptr, 0, c.byteLength, stream);
  } else {
    const g = gemmArgs(m, n, k, transA, transB);
    const h = cublasHandle(dev);
    const { fn } = cublas();
    const alpha = new Float32Array([1]);
    const beta = new Float32Array([accumulate ? 1 : 0]);
    const context = `multiplying ${a.describe()} by ${b.describe()}`;
    if (a.dtype === "f32") {
      const rc = fn.cublasSgemm_v2(
        h,
        g.opA,
        g.opB,
        g.m,
        g.n,
        g.k,
        alpha,
        b.ptr,
        g.lda,
        a.ptr,
        g.ldb,
        beta,
        c.ptr,
        g.ldc,
      );
      checkCublas(rc, "cublasSgemm_v2", context);
    } else {
      const rc = fn.cublasGemmEx(
        h,
        g.opA,
        g.opB,
        g.m,
        g.n,
        g.k,
        alpha,
        b.ptr,
        type,
        g.lda,
        a.ptr,
        type,
        g.ldb,
        beta,
        c.ptr,
        CUDA_R_32F,
        g.ldc,
        CUBLAS_COMPUTE_32F,
        CUBLAS_GEMM_DEFAULT,
      );
      checkCublas(rc, "cublasGemmEx", context);
    }
  }
  if (bias) launchKernel("add_rows_f32", dev, { ...gridFor(m * n), stream }, [c.ptr, bias.ptr, m, n]);
  return c;
}
