// Casts between f32 and the half types, round to nearest even (the intrinsics' _rn forms), NaN
// kept NaN: the GPU twin of kernels/as/cast_{f16,bf16}.ts. Grid-stride loops over n elements.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

extern "C" __global__ void cast_f32_f16(const float *src, __half *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}

extern "C" __global__ void cast_f32_bf16(const float *src, __nv_bfloat16 *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

extern "C" __global__ void cast_f16_f32(const __half *src, float *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = __half2float(src[i]);
}

extern "C" __global__ void cast_bf16_f32(const __nv_bfloat16 *src, float *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = __bfloat162float(src[i]);
}
