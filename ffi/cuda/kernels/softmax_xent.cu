// Row softmax cross-entropy for logits [rows, cols] and integer labels [rows]: one block per row
// (blockDim.x a power of two, at most 1024). loss[r] = logsumexp(x[r]) − x[r, label], and
// dlogits[r] = (softmax(x[r]) − onehot(label)) · grad_scale (grad_scale = 1/rows for a mean).
// A label outside [0, cols) gives a NaN loss for that row rather than reading out of bounds.
#include <math_constants.h>

__device__ float block_reduce(float v, float *shared, bool is_max) {
  const unsigned t = threadIdx.x;
  shared[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) shared[t] = is_max ? fmaxf(shared[t], shared[t + s]) : shared[t] + shared[t + s];
    __syncthreads();
  }
  const float r = shared[0];
  __syncthreads();
  return r;
}

extern "C" __global__ void softmax_xent_f32(const float *logits, const int *labels, float *loss, float *dlogits,
                                            unsigned int cols, float grad_scale) {
  extern __shared__ float shared[];
  const unsigned long long row = blockIdx.x;
  const float *x = logits + row * cols;
  float m = -CUDART_INF_F;
  for (unsigned c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, x[c]);
  m = block_reduce(m, shared, true);
  float s = 0.0f;
  for (unsigned c = threadIdx.x; c < cols; c += blockDim.x) s += expf(x[c] - m);
  s = block_reduce(s, shared, false);
  const int label = labels[row];
  const bool valid = label >= 0 && (unsigned)label < cols;
  if (threadIdx.x == 0) loss[row] = valid ? logf(s) + m - x[label] : CUDART_NAN_F;
  if (dlogits) {
    float *d = dlogits + row * cols;
    for (unsigned c = threadIdx.x; c < cols; c += blockDim.x)
      d[c] = (expf(x[c] - m) / s - (valid && (int)c == label ? 1.0f : 0.0f)) * grad_scale;
  }
}
