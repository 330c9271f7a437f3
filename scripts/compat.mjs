// Runs the cross-runtime suites (test/compat/smoke.mjs, launch.mjs, blas.mjs) under Node, Deno and
// Bun, using the runtimes the `deno` and `bun` npm packages install. Exits non-zero if any run fails.
// deterministic.mjs starts its runtimes itself (the same loss bits everywhere, PLAIT_DETERMINISTIC).
// The smoke and launch suites run on Deno without --allow-ffi (matmul then falls back to the WASM
// GEMM); blas.mjs runs on Deno with it, and once more without it to check that fallback. Where
// mpirun is on PATH (CI installs OpenMPI), launch() joins `mpirun -np 2` on each runtime too (2
// processes × 2 threads, MPI through koffi; Deno with -A, which MPI needs: ffi, env, sys, read).
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
  // spawns Node, Deno (with and without --allow-ffi) and Bun at 1 and 2 threads itself
  ["node test/compat/deterministic.mjs", [process.execPath, "test/compat/deterministic.mjs"]],
);
const hasMpirun = spawnSync("mpirun", ["--version"], { stdio: "ignore" }).status === 0;
if (hasMpirun || process.env.PLAIT_REQUIRE_MPI === "1") {
  const mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"];
  const script = "test/fixtures/launch-script.mjs";
  runs.push(
    [`mpirun node ${script}`, [...mpirun, process.execPath, script]],
    [`mpirun deno ${script}`, [...mpirun, bin("deno"), "run", "-A", script]],
    [`mpirun bun ${script}`, [...mpirun, bin("bun"), script]],
  );
} else console.error("compat: mpirun not found: the MPI runs are skipped (apt-get install -y openmpi-bin)");
let failed = 0;
for (const [name, [cmd, ...args]] of runs) {
  const mpi = cmd === "mpirun";
  const env = mpi ? { ...process.env, DEVICES: "2", PLAIT_THREADS: "1" } : process.env;
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8", stdio: mpi ? "pipe" : "inherit" });
  if (mpi) process.stdout.write(r.stdout + r.stderr);
  if (r.status !== 0 || (mpi && !r.stdout.includes("all ranks done"))) {
    console.error(`compat: ${name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
