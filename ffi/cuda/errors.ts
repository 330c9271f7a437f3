// The one exception for every failed CUDA call: runtime (cudaError_t), driver (CUresult) and
// cuBLAS (cublasStatus_t). It names the call, the library's own name for the code, the code and
// the library's description, so a log line says what failed without a lookup.

/** Which CUDA library returned the code. */
export type CudaApi = "runtime" | "driver" | "cublas";

/** A CUDA call that returned an error code. */
export class CudaError extends Error {
  constructor(
    /** The C function that failed, e.g. "cudaMalloc". */
    readonly call: string,
    readonly api: CudaApi,
    /** The code returned, e.g. 35. */
    readonly code: number,
    /** The library's name for it, e.g. "cudaErrorInsufficientDriver". */
    readonly errorName: string,
    /** The library's description, e.g. "CUDA driver version is insufficient for CUDA runtime version". */
    readonly description: string,
    /** What plait was doing, e.g. "moving f32[2, 3] to cuda:0". */
    readonly context?: string,
  ) {
    super(
      `plait: CUDA ${api}: ${call} returned ${code} (${errorName}: ${description})${context ? ` while ${context}` : ""}${hint(api, code)}`,
    );
    this.name = "CudaError";
  }
}

/** A next step for the codes a user can act on. */
function hint(api: CudaApi, code: number): string {
  if (api === "runtime" && code === 35)
    return "; no usable NVIDIA driver: this machine needs an NVIDIA GPU and its driver (see `plait env`)";
  if (api === "runtime" && code === 100)
    return "; no CUDA device is visible (check CUDA_VISIBLE_DEVICES, `nvidia-smi`)";
  if (api === "runtime" && code === 2) return "; out of device memory";
  return "";
}

/** cuBLAS status names (cublas_api.h); used when the library has no cublasGetStatusName. */
export const CUBLAS_STATUS: Readonly<Record<number, string>> = {
  0: "CUBLAS_STATUS_SUCCESS",
  1: "CUBLAS_STATUS_NOT_INITIALIZED",
  3: "CUBLAS_STATUS_ALLOC_FAILED",
  7: "CUBLAS_STATUS_INVALID_VALUE",
  8: "CUBLAS_STATUS_ARCH_MISMATCH",
  11: "CUBLAS_STATUS_MAPPING_ERROR",
  13: "CUBLAS_STATUS_EXECUTION_FAILED",
  14: "CUBLAS_STATUS_INTERNAL_ERROR",
  15: "CUBLAS_STATUS_NOT_SUPPORTED",
  16: "CUBLAS_STATUS_LICENSE_ERROR",
};
