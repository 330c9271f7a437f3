// Deterministic reductions over f32: sum and sum of squares (the global gradient norm of
// withGradClip). Two passes, no atomics: each block of pass 1 writes one partial (a fixed-order
// tree within the block), then one block sums the partials in a fixed order, so a given n and
// grid give the same bits on every run. blockDim.x must be 256.
#define THREADS 256

__device__ float block_sum(float v) {
  __shared__ float s[THREADS];
  const unsigned t = threadIdx.x;
  s[t] = v;
  __syncthreads();
  for (unsigned k = THREADS / 2; k > 0; k >>= 1) {
    if (t < k) s[t] += s[t + k];
    __syncthreads();
  }
  return s[0];
}

/** partials[blockIdx.x] = Σ x[i] (square = 0) or Σ x[i]² (square = 1) over this block's grid-stride share. */
extern "C" __global__ void sum_partial_f32(const float *x, unsigned long long n, int square, float *partials) {
  float acc = 0.0f;
  for (unsigned long long i = blockIdx.x * (unsigned long long)THREADS + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * THREADS)
    acc = square ? fmaf(x[i], x[i], acc) : acc + x[i];
  const float total = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

/** out[0] = Σ partials[0..count) in a fixed order; launch with one block. */
extern "C" __global__ void sum_final_f32(const float *partials, unsigned int count, float *out) {
  float acc = 0.0f;
  for (unsigned i = threadIdx.x; i < count; i += THREADS) acc += partials[i];
  const float total = block_sum(acc);
  if (threadIdx.x == 0) out[0] = total;
}
