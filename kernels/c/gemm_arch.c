// Which CPU family runs this WebAssembly, as far as floating point shows it: an invalid
// operation (inf − inf) yields the CPU's default NaN, whose sign bit x86 (SSE/AVX) sets and
// ARM, RISC-V and others clear; engines pass it through unchanged. XNNPACK tells its x86 and
// ARM wasm kernels apart the same way. The operands come from the caller, so the compiler
// cannot fold the subtraction into its own (positive) NaN.
// Reference: test/gemm-kernels.test.ts (x86 hosts must report 1, others 0).
#include <emscripten.h>
#include <wasm_simd128.h>

EMSCRIPTEN_KEEPALIVE int gemm_default_nan_negative(float inf) {
  const v128_t x = wasm_f32x4_splat(inf);
  return wasm_i32x4_extract_lane(wasm_f32x4_sub(x, x), 0) < 0;
}
