// Every C prototype and constant the CUDA bindings use, in one place: the bindings bind these
// strings, and test/cuda-abi.test.ts checks each against the CUDA headers (name, argument count,
// the C type behind each koffi type, every enum value). Handles (streams, events, modules,
// functions, contexts, cuBLAS handles) and device pointers cross as `void *` (koffi passes a
// bigint or number there); a handle or pointer written by the callee comes back through
// `_Out_ uintptr_t *` as a number, which the bindings turn into a bigint.

/** cudaMemcpyKind (driver_types.h). */
export const cudaMemcpyHostToDevice = 1;
export const cudaMemcpyDeviceToHost = 2;
export const cudaMemcpyDeviceToDevice = 3;

/** Stream and event flags (driver_types.h). */
export const cudaStreamNonBlocking = 0x01;
export const cudaEventDisableTiming = 0x02;

/** cudaError_t codes plait names itself (driver_types.h). */
export const cudaSuccess = 0;
export const cudaErrorInvalidValue = 1;
export const cudaErrorMemoryAllocation = 2;
export const cudaErrorInsufficientDriver = 35;
export const cudaErrorInvalidDevice = 101;
export const cudaErrorNoDevice = 100;
/** cudaEventQuery/cudaStreamQuery: the work is not done yet (not an error). */
export const cudaErrorNotReady = 600;

/** cudaDeviceAttr ids (driver_types.h) that `deviceInfo` reads. */
export const DEVICE_ATTRIBUTES = {
  cudaDevAttrMaxThreadsPerBlock: 1,
  cudaDevAttrMaxSharedMemoryPerBlock: 8,
  cudaDevAttrWarpSize: 10,
  cudaDevAttrClockRate: 13,
  cudaDevAttrMultiProcessorCount: 16,
  cudaDevAttrMemoryClockRate: 36,
  cudaDevAttrGlobalMemoryBusWidth: 37,
  cudaDevAttrL2CacheSize: 38,
  cudaDevAttrComputeCapabilityMajor: 75,
  cudaDevAttrComputeCapabilityMinor: 76,
} as const;

/** cudaDataType (library_types.h). */
export const CUDA_R_32F = 0;
export const CUDA_R_64F = 1;
export const CUDA_R_16F = 2;
export const CUDA_R_16BF = 14;

/** cublasOperation_t, cublasComputeType_t, cublasGemmAlgo_t (cublas_api.h). */
export const CUBLAS_OP_N = 0;
export const CUBLAS_OP_T = 1;
export const CUBLAS_COMPUTE_32F = 68;
export const CUBLAS_GEMM_DEFAULT = -1;

/** CUresult codes plait names itself (cuda.h). */
export const CUDA_SUCCESS = 0;
export const CUDA_ERROR_NOT_INITIALIZED = 3;
export const CUDA_ERROR_NO_DEVICE = 100;
export const CUDA_ERROR_INVALID_PTX = 218;
export const CUDA_ERROR_NOT_FOUND = 500;

/** Which header declares the constants above, for the ABI test. */
export const CONSTANT_HEADERS: Readonly<Record<string, string>> = {
  cudaMemcpyHostToDevice: "driver_types.h",
  cudaMemcpyDeviceToHost: "driver_types.h",
  cudaMemcpyDeviceToDevice: "driver_types.h",
  cudaStreamNonBlocking: "driver_types.h",
  cudaEventDisableTiming: "driver_types.h",
  cudaSuccess: "driver_types.h",
  cudaErrorInvalidValue: "driver_types.h",
  cudaErrorMemoryAllocation: "driver_types.h",
  cudaErrorInsufficientDriver: "driver_types.h",
  cudaErrorInvalidDevice: "driver_types.h",
  cudaErrorNoDevice: "driver_types.h",
  cudaErrorNotReady: "driver_types.h",
  ...Object.fromEntries(Object.keys(DEVICE_ATTRIBUTES).map((k) => [k, "driver_types.h"])),
  CUDA_R_32F: "library_types.h",
  CUDA_R_64F: "library_types.h",
  CUDA_R_16F: "library_types.h",
  CUDA_R_16BF: "library_types.h",
  CUBLAS_OP_N: "cublas_api.h",
  CUBLAS_OP_T: "cublas_api.h",
  CUBLAS_COMPUTE_32F: "cublas_api.h",
  CUBLAS_GEMM_DEFAULT: "cublas_api.h",
  CUDA_SUCCESS: "cuda.h",
  CUDA_ERROR_NOT_INITIALIZED: "cuda.h",
  CUDA_ERROR_NO_DEVICE: "cuda.h",
  CUDA_ERROR_INVALID_PTX: "cuda.h",
  CUDA_ERROR_NOT_FOUND: "cuda.h",
};

/** libcudart (cuda_runtime_api.h). */
export const RUNTIME = {
  cudaGetDeviceCount: "int cudaGetDeviceCount(_Out_ int *count)",
  cudaDeviceGetAttribute: "int cudaDeviceGetAttribute(_Out_ int *value, int attr, int device)",
  cudaSetDevice: "int cudaSetDevice(int device)",
  cudaGetDevice: "int cudaGetDevice(_Out_ int *device)",
  cudaDeviceSynchronize: "int cudaDeviceSynchronize()",
  cudaRuntimeGetVersion: "int cudaRuntimeGetVersion(_Out_ int *runtimeVersion)",
  cudaDriverGetVersion: "int cudaDriverGetVersion(_Out_ int *driverVersion)",
  cudaGetErrorName: "const char *cudaGetErrorName(int error)",
  cudaGetErrorString: "const char *cudaGetErrorString(int error)",
  cudaGetLastError: "int cudaGetLastError()",
  cudaMalloc: "int cudaMalloc(_Out_ uintptr_t *devPtr, size_t size)",
  cudaFree: "int cudaFree(void *devPtr)",
  cudaMallocHost: "int cudaMallocHost(_Out_ uintptr_t *ptr, size_t size)",
  cudaFreeHost: "int cudaFreeHost(void *ptr)",
  cudaMemGetInfo: "int cudaMemGetInfo(_Out_ size_t *free, _Out_ size_t *total)",
  cudaMemcpyAsync: "int cudaMemcpyAsync(void *dst, const void *src, size_t count, int kind, void *stream)",
  cudaMemsetAsync: "int cudaMemsetAsync(void *devPtr, int value, size_t count, void *stream)",
  cudaStreamCreateWithFlags: "int cudaStreamCreateWithFlags(_Out_ uintptr_t *pStream, unsigned int flags)",
  cudaStreamDestroy: "int cudaStreamDestroy(void *stream)",
  cudaStreamSynchronize: "int cudaStreamSynchronize(void *stream)",
  cudaStreamQuery: "int cudaStreamQuery(void *stream)",
  cudaStreamWaitEvent: "int cudaStreamWaitEvent(void *stream, void *event, unsigned int flags)",
  cudaEventCreateWithFlags: "int cudaEventCreateWithFlags(_Out_ uintptr_t *event, unsigned int flags)",
  cudaEventRecord: "int cudaEventRecord(void *event, void *stream)",
  cudaEventSynchronize: "int cudaEventSynchronize(void *event)",
  cudaEventQuery: "int cudaEventQuery(void *event)",
  cudaEventElapsedTime: "int cudaEventElapsedTime(_Out_ float *ms, void *start, void *end)",
  cudaEventDestroy: "int cudaEventDestroy(void *event)",
} as const;

/** libcuda (cuda.h): contexts and modules for the PTX kernels. */
export const DRIVER = {
  cuInit: "int cuInit(unsigned int Flags)",
  cuDriverGetVersion: "int cuDriverGetVersion(_Out_ int *driverVersion)",
  cuDeviceGet: "int cuDeviceGet(_Out_ int *device, int ordinal)",
  cuDeviceGetName: "int cuDeviceGetName(void *name, int len, int dev)",
  cuDevicePrimaryCtxRetain: "int cuDevicePrimaryCtxRetain(_Out_ uintptr_t *pctx, int dev)",
  cuCtxSetCurrent: "int cuCtxSetCurrent(void *ctx)",
  cuCtxGetCurrent: "int cuCtxGetCurrent(_Out_ uintptr_t *pctx)",
  cuModuleLoadData: "int cuModuleLoadData(_Out_ uintptr_t *module, const void *image)",
  cuModuleGetFunction: "int cuModuleGetFunction(_Out_ uintptr_t *hfunc, void *hmod, const char *name)",
  cuModuleUnload: "int cuModuleUnload(void *hmod)",
  cuLaunchKernel:
    "int cuLaunchKernel(void *f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, void *hStream, void *kernelParams, void *extra)",
  cuGetErrorName: "int cuGetErrorName(int error, _Out_ const char **pStr)",
  cuGetErrorString: "int cuGetErrorString(int error, _Out_ const char **pStr)",
} as const;

/** libcublas (cublas_api.h): the _v2 symbols the header's macros name. */
export const CUBLAS = {
  cublasCreate_v2: "int cublasCreate_v2(_Out_ uintptr_t *handle)",
  cublasDestroy_v2: "int cublasDestroy_v2(void *handle)",
  cublasSetStream_v2: "int cublasSetStream_v2(void *handle, void *streamId)",
  cublasGetProperty: "int cublasGetProperty(int type, _Out_ int *value)",
  cublasGetStatusName: "const char *cublasGetStatusName(int status)",
  cublasGetStatusString: "const char *cublasGetStatusString(int status)",
  cublasSgemm_v2:
    "int cublasSgemm_v2(void *handle, int transa, int transb, int m, int n, int k, const float *alpha, const void *A, int lda, const void *B, int ldb, const float *beta, void *C, int ldc)",
  cublasGemmEx:
    "int cublasGemmEx(void *handle, int transa, int transb, int m, int n, int k, const void *alpha, const void *A, int Atype, int lda, const void *B, int Btype, int ldb, const void *beta, void *C, int Ctype, int ldc, int computeType, int algo)",
} as const;
