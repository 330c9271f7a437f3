// Casts between f32 and the half types, round to nearest even (the intrinsics' _rn forms): the
// GPU twin of kernels/as/cast_{f16,bf16}.ts, bit for bit. A NaN keeps its sign and top payload
// bits, quieted, as the CPU casts do (the intrinsics would give the canonical 0x7fff instead).
// Grid-stride loops over n elements.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ bool is_nan_bits(unsigned u) { return (u & 0x7fffffffu) > 0x7f800000u; }

__device__ __forceinline__ __half to_f16(float x) {
  const unsigned u = __float_as_uint(x);
  if (is_nan_bits(u)) return __ushort_as_half((unsigned short)(((u >> 16) & 0x8000u) | 0x7e00u | ((u & 0x7fffffu) >> 13)));
  return __float2half_rn(x);
}

__device__ __forceinline__ __nv_bfloat16 to_bf16(float x) {
  const unsigned u = __float_as_uint(x);
  if (is_nan_bits(u)) return __ushort_as_bfloat16((unsigned short)((u >> 16) | 0x40u));
  return __float2bfloat16_rn(x);
}

extern "C" __global__ void cast_f32_f16(const float *src, __half *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = to_f16(src[i]);
}

extern "C" __global__ void cast_f32_bf16(const float *src, __nv_bfloat16 *dst, unsigned long long n) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    dst[i] = to_bf16(src[i]);
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
