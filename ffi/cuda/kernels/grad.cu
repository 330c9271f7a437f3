// The backward forms autodiff needs on a device beside elementwise.cu's: scaling, accumulation,
// a device scalar spread over a tensor (the gradient of a sum, a mean, a loss), and the column
// sums of a matrix (a bias's gradient). Grid-stride loops over f32; `accumulate` adds into out
// instead of overwriting it. A scalar that lives on the device (an output gradient) is read
// there, so no backward waits for the host.
#define LOOP(n) \
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < (n); \
       i += (unsigned long long)gridDim.x * blockDim.x)

/** out = s · x (out may be x). */
extern "C" __global__ void scale_f32(const float *x, float s, float *out, unsigned long long n) {
  LOOP(n) out[i] = s * x[i];
}

/** y += s · x. */
extern "C" __global__ void axpy_f32(float s, const float *x, float *y, unsigned long long n) {
  LOOP(n) y[i] = fmaf(s, x[i], y[i]);
}

/**
 * out (+)= x · (s[0] · factor), or (+)= s[0] · factor where x is null: a device scalar times a
 * tensor (the cross-entropy's saved gradient) or spread over one (the gradient of a sum).
 */
extern "C" __global__ void scale_by_f32(const float *x, const float *s, float factor, float *out,
                                        unsigned long long n, int accumulate) {
  const float k = s[0] * factor;
  LOOP(n) {
    const float v = x ? x[i] * k : k;
    out[i] = accumulate ? out[i] + v : v;
  }
}

/**
 * out[c] (+)= Σ_r g[r, c] for a row-major [rows, cols] g: one thread per column, rows summed in
 * order, so the bits do not depend on the launch.
 */
extern "C" __global__ void col_sum_f32(const float *g, float *out, unsigned long long rows, unsigned long long cols,
                                       int accumulate) {
  LOOP(cols) {
    float acc = 0.0f;
    for (unsigned long long r = 0; r < rows; r++) acc += g[r * cols + i];
    out[i] = accumulate ? out[i] + acc : acc;
  }
}
