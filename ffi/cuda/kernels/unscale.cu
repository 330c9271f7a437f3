// The AMP unscale step, fused with the finite check: dst = src · inv, and *found_inf = 1 when
// any input is ±inf or NaN (torch's _amp_foreach_non_finite_check_and_unscale_). The flag is
// only ever set, never cleared here: the caller zeroes it before the step's first call, so one
// flag covers every gradient of the step. Variants read f16 or bf16 gradients and write f32.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ void unscale_one(float x, float inv, float *dst, int *found_inf) {
  if ((__float_as_uint(x) & 0x7f800000u) == 0x7f800000u) *found_inf = 1;
  *dst = x * inv;
}

extern "C" __global__ void unscale_f32(const float *src, float *dst, unsigned long long n, float inv, int *found_inf) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    unscale_one(src[i], inv, dst + i, found_inf);
}

extern "C" __global__ void unscale_f16(const __half *src, float *dst, unsigned long long n, float inv, int *found_inf) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    unscale_one(__half2float(src[i]), inv, dst + i, found_inf);
}

extern "C" __global__ void unscale_bf16(const __nv_bfloat16 *src, float *dst, unsigned long long n, float inv,
                                        int *found_inf) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x)
    unscale_one(__bfloat162float(src[i]), inv, dst + i, found_inf);
}
