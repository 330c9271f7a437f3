// Elementwise f32 ops of the demo's model and their backward forms. Grid-stride loops; out may
// alias an input.
#define LOOP(n) \
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < (n); \
       i += (unsigned long long)gridDim.x * blockDim.x)

extern "C" __global__ void add_f32(const float *a, const float *b, float *out, unsigned long long n) {
  LOOP(n) out[i] = a[i] + b[i];
}

extern "C" __global__ void mul_f32(const float *a, const float *b, float *out, unsigned long long n) {
  LOOP(n) out[i] = a[i] * b[i];
}

/** out = x < 0 ? 0 : x: NaN and -0 pass through, as the CPU kernel (f32x4.pmax) does. */
extern "C" __global__ void relu_f32(const float *x, float *out, unsigned long long n) {
  LOOP(n) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/** dx = g where x > 0, else 0 (NaN x gives 0, as the CPU kernel's compare does). */
extern "C" __global__ void relu_backward_f32(const float *x, const float *g, float *dx, unsigned long long n) {
  LOOP(n) dx[i] = x[i] > 0.0f ? g[i] : 0.0f;
}

/** out[r, c] += bias[c] for a row-major [rows, cols] matrix. */
extern "C" __global__ void add_rows_f32(float *out, const float *bias, unsigned long long rows, unsigned long long cols) {
  LOOP(rows * cols) out[i] += bias[i % cols];
}
