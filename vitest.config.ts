import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Kernel and training tests that run a second time on the relaxed-SIMD kernel build (fused
 * multiply-add), the one Deno, Bun and Node ≥ 22 pick by default. Node 20 validates it only with
 * --experimental-wasm-relaxed-simd; PLAIT_SIMD=relaxed makes plait refuse to fall back.
 */
export const RELAXED_TESTS = [
  "test/simd-variant.test.ts",
  "test/elementwise.test.ts",
  "test/elementwise-math.test.ts",
  "test/activation-f64.test.ts",
  "test/reduce.test.ts",
  "test/softmax.test.ts",
  "test/cast.test.ts",
  "test/round-half.test.ts",
  "test/gemm*.test.ts",
  "test/optim.test.ts",
  "test/ops-*.test.ts",
  "test/autodiff.test.ts",
  "test/mlp.test.ts",
  "test/amp.test.ts",
  "test/precision.test.ts",
];

export default defineConfig({
  resolve: { alias: { plait: fileURLToPath(new URL("./src/index.ts", import.meta.url)) } },
  test: {
    testTimeout: 60_000,
    pool: "forks",
    // Workers and child processes load plait from dist/: rebuilt here when src/ is newer. Where
    // no system BLAS is installed, the BLAS suites skip and native.ts names them and the fix.
    globalSetup: ["test/setup/dist.ts", "test/setup/native.ts"],
    // A fixed seed for fast-check and Math.random.
    setupFiles: ["test/setup/seed.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "simd",
          include: ["test/**/*.test.ts"],
          exclude: ["test/compat/**", "test/gpu/**"],
          // the plain SIMD build, whatever the Node version would pick by default
          env: { PLAIT_SIMD: "simd" },
        },
      },
      {
        extends: true,
        test: {
          name: "relaxed",
          include: RELAXED_TESTS,
          // the WASM GEMM, not the system BLAS: matmul/linear/training run the relaxed kernels
          // here, and the PLAIT_BLAS=off path of the ops is tested end to end
          env: { PLAIT_SIMD: "relaxed", PLAIT_BLAS: "off" },
          execArgv: ["--experimental-wasm-relaxed-simd"],
        },
      },
    ],
  },
});
