// The CUDA bindings against the CUDA headers, without a GPU: every constant ffi/cuda/api.ts
// hard-codes, and every prototype it binds (symbol, argument count, the C type behind each koffi
// type), read from /usr/local/cuda*/include (or CUDA_HOME). Then libcudart itself: it loads here,
// has every symbol, and without a driver cudaGetDeviceCount's 35 becomes a CudaError that says so.
// A header or library that is not installed skips its tests with the reason in the test name.
import { describe, expect, it } from "vitest";
import * as api from "../ffi/cuda/api.ts";
import { CUBLAS_STATUS, CudaError } from "../ffi/cuda/errors.ts";
import { cudart, deviceCount } from "../ffi/cuda/runtime.ts";
import { CUDA_DRIVER_SPEC, CUDART_SPEC } from "../ffi/cuda.ts";
import { LibraryError, libraryMode, openLibrary } from "../ffi/find.ts";
import { tensor } from "../src/index.ts";
import { constantValue, declaration, defineTarget, findHeader, headerText, normalize } from "./cuda-headers.ts";

const skipReason = (header: string) =>
  findHeader(header) ? "" : ` (skipped: ${header} not found in ${"CUDA_HOME or /usr/local/cuda*/include"})`;

/** C integer typedefs and enums that cross as a C int. */
const INT_TYPES = new Set([
  "cudaError_t",
  "CUresult",
  "cublasStatus_t",
  "cudaMemcpyKind",
  "cudaDeviceAttr",
  "CUdevice",
  "cublasOperation_t",
  "cudaDataType",
  "cublasComputeType_t",
  "cublasGemmAlgo_t",
  "libraryPropertyType",
]);
/** Opaque handle typedefs (pointers to incomplete structs). */
const HANDLES = new Set([
  "cudaStream_t",
  "cudaEvent_t",
  "CUcontext",
  "CUmodule",
  "CUfunction",
  "CUstream",
  "cublasHandle_t",
]);

const isPointer = (c: string) => c.endsWith("*") || HANDLES.has(c);
const scalarOf = (c: string) =>
  ["int", "unsigned int", "size_t", "float"].includes(c) ? c : INT_TYPES.has(c) ? "int" : undefined;

/** Why koffi type `k` cannot stand for C type `c` in a call, or undefined when it can. */
function mismatch(k: string, c: string): string | undefined {
  const out = k.startsWith("_Out_ ");
  const kt = normalize(k.replace(/^_Out_ /, ""));
  if (out) {
    if (!c.endsWith("*")) return `_Out_ needs a C pointer, the header has ${c}`;
    const pointee = normalize(c.replace(/\s*\*$/, ""));
    const want = normalize(kt.replace(/\s*\*$/, ""));
    if (want === "uintptr_t")
      return isPointer(pointee) ? undefined : `uintptr_t out-value for ${pointee}, not a pointer or handle`;
    return want === pointee || want === scalarOf(pointee) ? undefined : `${want} out-value for ${pointee}`;
  }
  if (kt === "void *" || kt === "const void *") return isPointer(c) ? undefined : `void * for non-pointer ${c}`;
  if (kt.endsWith("*")) return kt === c ? undefined : `${kt} for ${c}`;
  return scalarOf(c) === kt ? undefined : `${kt} for ${c}`;
}

/** The koffi prototype's return type, symbol and parameter types. */
function parseKoffi(proto: string): { returns: string; name: string; params: string[] } {
  const m = /^(.*?)\s*\b(\w+)\s*\((.*)\)$/.exec(proto)!;
  const params =
    m[3].trim() === ""
      ? []
      : m[3].split(",").map((p) =>
          p
            .trim()
            .replace(/\s*\b\w+$/, "")
            .trim(),
        );
  return {
    returns: normalize(m[1]),
    name: m[2],
    params: params.map((p) => (p.startsWith("_Out_") ? `_Out_ ${normalize(p.slice(5))}` : normalize(p))),
  };
}

describe("constants: every hard-coded value equals the header's", () => {
  for (const [name, header] of Object.entries(api.CONSTANT_HEADERS)) {
    const path = findHeader(header);
    it.skipIf(!path)(`${name} (${header})${skipReason(header)}`, () => {
      const value =
        name in api.DEVICE_ATTRIBUTES
          ? (api.DEVICE_ATTRIBUTES as Record<string, number>)[name]
          : (api as unknown as Record<string, number>)[name];
      expect(value, `${name} in ffi/cuda/api.ts`).toBeTypeOf("number");
      expect(constantValue(headerText(path!), name), `${name} in ${path}`).toBe(value);
    });
  }
});

describe("cuBLAS status names (the fallback when cublasGetStatusName is missing)", () => {
  const path = findHeader("cublas_api.h");
  for (const [code, name] of Object.entries(CUBLAS_STATUS)) {
    it.skipIf(!path)(`${name} = ${code}${skipReason("cublas_api.h")}`, () => {
      expect(constantValue(headerText(path!), name)).toBe(Number(code));
    });
  }
});

describe("CudaError", () => {
  it("names the API, the call, the code, CUDA's name and text, and what plait was doing", () => {
    const e = new CudaError(
      "cublasSgemm_v2",
      "cublas",
      13,
      "CUBLAS_STATUS_EXECUTION_FAILED",
      "the GPU program failed to execute",
      "multiplying f32[2, 3] on cuda:0 by f32[3, 4] on cuda:0",
    );
    expect(e.name).toBe("CudaError");
    expect(e.message).toBe(
      "plait: CUDA cublas: cublasSgemm_v2 returned 13 (CUBLAS_STATUS_EXECUTION_FAILED: the GPU program failed to execute) while multiplying f32[2, 3] on cuda:0 by f32[3, 4] on cuda:0",
    );
    expect(new CudaError("cudaMalloc", "runtime", 2, "cudaErrorMemoryAllocation", "out of memory").message).toMatch(
      /; out of device memory$/,
    );
  });
});

const TABLES: [string, Record<string, string>, string][] = [
  ["runtime", api.RUNTIME, "cuda_runtime_api.h"],
  ["driver", api.DRIVER, "cuda.h"],
  ["cuBLAS", api.CUBLAS, "cublas_api.h"],
];

describe("prototypes: symbol, argument count and types match the headers", () => {
  for (const [lib, table, header] of TABLES) {
    const path = findHeader(header);
    for (const [symbol, proto] of Object.entries(table)) {
      it.skipIf(!path)(`${lib} ${symbol}${skipReason(header)}`, () => {
        const text = headerText(path!);
        const k = parseKoffi(proto);
        expect(k.name, "the table's key is the bound symbol").toBe(symbol);
        // a header macro may rename the API (cuDevicePrimaryCtxRelease → _v2): bind what it names
        const base = symbol.replace(/_v\d+$/, "");
        expect(defineTarget(text, base) ?? symbol, `#define ${base} in ${header}`).toBe(symbol);
        const decl = declaration(text, symbol) ?? declaration(text, base);
        expect(decl, `a declaration of ${symbol} in ${path}`).toBeDefined();
        const returns = k.returns === "int" ? ["cudaError_t", "CUresult", "cublasStatus_t"] : [k.returns];
        expect(returns, `return type of ${symbol}`).toContain(decl!.returns);
        expect(k.params.length, `argument count of ${symbol}: header ${decl!.params.join(", ")}`).toBe(
          decl!.params.length,
        );
        const bad = k.params
          .map((p, i) => mismatch(p, decl!.params[i]))
          .map((e, i) => (e ? `argument ${i}: ${e}` : ""))
          .filter(Boolean);
        expect(bad, `${symbol}: ${proto}`).toEqual([]);
      });
    }
  }

  it("the type rule itself refuses what it should", () => {
    expect(mismatch("int", "size_t")).toBeDefined();
    expect(mismatch("_Out_ int *", "int")).toBeDefined();
    expect(mismatch("_Out_ uintptr_t *", "int *")).toBeDefined();
    expect(mismatch("void *", "int")).toBeDefined();
    expect(mismatch("_Out_ uintptr_t *", "cudaStream_t *")).toBeUndefined();
    expect(mismatch("_Out_ const char **", "const char **")).toBeUndefined();
    expect(mismatch("int", "cudaMemcpyKind")).toBeUndefined();
  });
});

const runtime = (() => {
  try {
    return openLibrary(CUDART_SPEC, libraryMode(CUDART_SPEC), []);
  } catch (e) {
    return e instanceof LibraryError ? e : undefined;
  }
})();
const noRuntime = runtime instanceof LibraryError ? ` (skipped: ${runtime.message.split("\n")[0]})` : "";
const hasDriver = (() => {
  try {
    openLibrary(CUDA_DRIVER_SPEC, libraryMode(CUDA_DRIVER_SPEC), []);
    return true;
  } catch {
    return false;
  }
})();

describe("libcudart on this machine", () => {
  it.skipIf(noRuntime !== "")(`loads and exports every symbol the bindings use${noRuntime}`, () => {
    const rt = cudart();
    expect(Object.keys(rt.fn).sort()).toEqual(Object.keys(api.RUNTIME).sort());
  });

  it.skipIf(noRuntime !== "" || hasDriver)(
    `without a driver: cudaGetDeviceCount's 35 is a CudaError naming the call, the error and the fix${noRuntime}${hasDriver ? " (skipped: a CUDA driver is installed)" : ""}`,
    () => {
      let err: unknown;
      try {
        deviceCount();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CudaError);
      const e = err as CudaError;
      expect(e).toMatchObject({
        call: "cudaGetDeviceCount",
        api: "runtime",
        code: 35,
        errorName: "cudaErrorInsufficientDriver",
      });
      expect(e.message).toMatch(
        /cudaGetDeviceCount returned 35 \(cudaErrorInsufficientDriver: CUDA driver version is insufficient/,
      );
      expect(e.message).toMatch(/NVIDIA GPU and its driver/);
      // the sticky error is cleared: asking again gives the same answer, not a stale one
      expect(() => deviceCount()).toThrow(/returned 35/);
    },
  );

  it.skipIf(noRuntime !== "" || hasDriver)(
    `without a driver: moving a tensor to cuda:0 throws that CudaError${noRuntime}`,
    () => {
      const t = tensor([1, 2, 3]);
      expect(() => t.to("cuda:0")).toThrow(CudaError);
      expect(() => t.to("cuda:0")).toThrow(/returned 35 \(cudaErrorInsufficientDriver.*f32\[3\] on cuda:0/);
      expect(() => tensor([[1, 2]], undefined, { device: "cuda:0" })).toThrow(/cudaErrorInsufficientDriver/);
      t.dispose();
    },
  );
});
