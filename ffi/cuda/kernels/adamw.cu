// Fused Adam / AdamW step, torch's rule as kernels/as/optim_adam.ts computes it. The caller
// passes the step's scalars: step_size = lr / (1 − β1^t), bc2_sqrt = sqrt(1 − β2^t),
// w = 1 − β1, c2 = 1 − β2, l2 = weight decay for Adam (else 0), decay = 1 − lr·wd for AdamW
// (else 1). Per element:
//   g' = g + l2·p;  p = p·decay;  m = lerp(m, g', w);  v = β2·v + (c2·g')·g'
//   p = p − step_size · (m / (sqrt(v) / bc2_sqrt + eps))
// m and v are stored with subnormals flushed to a signed zero, as the CPU kernel stores them
// (design: optimizer state), so an entry decaying towards zero takes the same path on both.
__device__ __forceinline__ float flush(float x) { return fabsf(x) < 1.17549435e-38f ? copysignf(0.0f, x) : x; }

extern "C" __global__ void adam_f32(float *p, const float *g, float *m, float *v, unsigned long long n,
                                    float step_size, float bc2_sqrt, float eps, float w, float beta2, float c2,
                                    float l2, float decay) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    float pi = p[i];
    float gi = g[i];
    if (l2 != 0.0f) gi = fmaf(l2, pi, gi);
    if (decay != 1.0f) pi *= decay;
    const float diff = gi - m[i];
    // torch's lerp: start + w·(end − start) for w < 0.5, else end − (1 − w)·(end − start)
    const float mi = flush(w < 0.5f ? fmaf(w, diff, m[i]) : fmaf(-(1.0f - w), diff, gi));
    const float vi = flush(fmaf(beta2, v[i], (c2 * gi) * gi));
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
  }
}
