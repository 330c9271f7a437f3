// fill_f32: out[i] = value. Reference: Float32Array.prototype.fill (test/fill.test.ts).
#include <emscripten.h>
#include <wasm_simd128.h>

EMSCRIPTEN_KEEPALIVE void fill_f32(float* out, float value, int n) {
  v128_t v = wasm_f32x4_splat(value);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, v);
  for (; i < n; i++) out[i] = value;
}
