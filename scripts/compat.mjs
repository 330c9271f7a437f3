// Runs the cross-runtime suites (test/compat/smoke.mjs, launch.mjs) under Node, Deno and Bun, using
// the runtimes the `deno` and `bun` npm packages install. Exits non-zero if any run fails.
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
let failed = 0;
for (const [name, [cmd, ...args]] of runs) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`compat: ${name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
