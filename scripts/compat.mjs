// Runs the cross-runtime suites (test/compat/smoke.mjs, launch.mjs, blas.mjs) under Node, Deno and
// Bun, using the runtimes the `deno` and `bun` npm packages install. Exits non-zero if any run fails.
// The smoke and launch suites run on Deno without --allow-ffi (matmul then falls back to the WASM
// GEMM); blas.mjs runs on Deno with it, and once more without it to check that fallback.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => `${root}node_modules/.bin/${name}`;
const denoRun = [bin("deno"), "run", "--allow-read", "--allow-env", "--allow-sys"];
const runs = [];
for (const suite of ["test/compat/smoke.mjs", "test/compat/launch.mjs"]) {
  runs.push(
    [`node ${suite}`, [process.execPath, suite]],
    [`deno ${suite}`, [...denoRun, suite]],
    [`bun ${suite}`, [bin("bun"), suite]],
  );
}
runs.push(
  ["node test/compat/blas.mjs", [process.execPath, "test/compat/blas.mjs"]],
  ["deno --allow-ffi test/compat/blas.mjs", [...denoRun, "--allow-ffi", "test/compat/blas.mjs"]],
  ["deno test/compat/blas.mjs no-ffi", [...denoRun, "test/compat/blas.mjs", "no-ffi"]],
  ["bun test/compat/blas.mjs", [bin("bun"), "test/compat/blas.mjs"]],
);
let failed = 0;
for (const [name, [cmd, ...args]] of runs) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`compat: ${name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
