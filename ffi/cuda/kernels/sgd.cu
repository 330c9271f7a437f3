// Fused SGD step, torch.optim.SGD's rule, as kernels/as/optim_sgd.ts computes it:
//   g' = g + weight_decay·p                 (when weight_decay ≠ 0)
//   mode 0 (no momentum):  d = g'
//   mode 1 (first step):   buf = g'
//   mode 2 (later steps):  buf = momentum·buf + grad_scale·g'   (grad_scale = 1 − dampening)
//   d = nesterov ? g' + momentum·buf : buf  (modes 1 and 2)
//   p = p − lr·d
// buf is stored with subnormals flushed to a signed zero, as the CPU kernel stores it.
__device__ __forceinline__ float flush(float x) { return fabsf(x) < 1.17549435e-38f ? copysignf(0.0f, x) : x; }

extern "C" __global__ void sgd_f32(float *p, const float *g, float *buf, unsigned long long n, float lr,
                                   float weight_decay, float momentum, float grad_scale, int mode, int nesterov) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    const float pi = p[i];
    float d = g[i];
    if (weight_decay != 0.0f) d = fmaf(weight_decay, pi, d);
    if (mode != 0) {
      const float b = flush(mode == 1 ? d : fmaf(grad_scale, d, buf[i] * momentum));
      buf[i] = b;
      d = nesterov ? fmaf(momentum, b, d) : b;
    }
    p[i] = fmaf(-lr, d, pi);
  }
}
