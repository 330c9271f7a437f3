// Which CPU family runs this WebAssembly, as far as floating point shows it: an invalid
// operation (inf − inf) yields the CPU's default NaN, whose sign bit x86 (SSE/AVX) sets and
// ARM, RISC-V and others clear; engines pass it through unchanged. XNNPACK tells its x86 and
// ARM wasm kernels apart the same way. The operands come from the caller, so the compiler
// cannot fold the subtraction into its own (positive) NaN.
// Reference: test/gemm-kernels.test.ts (x86 hosts must report 1, others 0; the fused probe
// against the build and engine).
#include <emscripten.h>
#include <wasm_simd128.h>

EMSCRIPTEN_KEEPALIVE int gemm_default_nan_negative(float inf) {
  const v128_t x = wasm_f32x4_splat(inf);
  return wasm_i32x4_extract_lane(wasm_f32x4_sub(x, x), 0) < 0;
}

// Whether this build's multiply-add (gemm_micro_f32.h's GEMM_MADD) rounds once: with
// x = 1 + 2^-12 and c = -(1 + 2^-11), x·x + c is 2^-24 when fused and 0 when the product is
// rounded first. The plain build never fuses; the relaxed build's relaxed_madd fuses under V8
// on x86 with FMA and on arm64, not under JavaScriptCore on x86. Unfused, a tile needs a
// register for each product, which decides which tiles fit (src/core/gemmKernel.ts).
#include "gemm_micro_f32.h"

EMSCRIPTEN_KEEPALIVE int gemm_madd_fuses(float x, float c) {
  const v128_t v = GEMM_MADD(wasm_f32x4_splat(x), wasm_f32x4_splat(x), wasm_f32x4_splat(c));
  return wasm_f32x4_extract_lane(v, 0) != 0.0f;
}
