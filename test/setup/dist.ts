// vitest globalSetup: tests whose work runs in worker threads or child processes load plait from
// dist/ (the package's exports), so a run must never see a dist/ older than src/ or ffi/. Before the
// run (and before each rerun in watch mode) every source file is compared with what tsc makes of it
// (src/x.ts → dist/src/x.js, ffi/x.ts → dist/ffi/x.js); if
// any is newer or missing, dist/ is rebuilt with `tsc -p tsconfig.build.json`, and the run stops
// with the command to run by hand if that did not bring dist/ up to date.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SOURCES = ["src", "ffi"].map((dir) => join(ROOT, dir));
const DIST = join(ROOT, "dist");
const LOCK = join(ROOT, "node_modules", ".plait-dist-build.lock");
const FIX = "npx tsc -p tsconfig.build.json";

function* files(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (/\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) yield path;
  }
}

const mtime = (path: string) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};

/** The source files whose dist output is missing or older than they are. */
export function staleSources(): string[] {
  const stale: string[] = [];
  for (const src of SOURCES.flatMap((dir) => [...files(dir)])) {
    const out = join(DIST, relative(ROOT, src)).replace(/\.ts$/, ".js");
    const built = mtime(out);
    if (built === undefined || built < (mtime(src) ?? 0)) stale.push(relative(ROOT, src));
  }
  return stale;
}

function describe(stale: string[]): string {
  return `${stale.slice(0, 5).join(", ")}${stale.length > 5 ? ` and ${stale.length - 5} more` : ""}`;
}

/** One build at a time (several vitest runs may share a checkout): a lock directory, waited on. */
function withLock(fn: () => void): void {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      const age = Date.now() - (mtime(LOCK) ?? Date.now());
      if (age > 300_000) rmSync(LOCK, { recursive: true, force: true }); // left by a killed run
      if (Date.now() > deadline) throw new Error(`dist/ build lock ${LOCK} held for 5 minutes; remove it and retry`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export function ensureFreshDist(): void {
  if (staleSources().length === 0) return;
  withLock(() => {
    const stale = staleSources(); // another run may have built it meanwhile
    if (stale.length === 0) return;
    console.log(`dist/ is older than its sources (${describe(stale)}): running ${FIX}`);
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      // tsc writes its output despite type errors: report them, and go on if dist/ is now fresh
      const out = String((e as { stdout?: Buffer }).stdout ?? "").trim();
      console.warn(`${FIX} reported errors:\n${out.split("\n").slice(0, 20).join("\n")}`);
    }
  });
  const still = staleSources();
  if (still.length > 0) {
    throw new Error(
      `dist/ is still older than its sources (${describe(still)}) after ${FIX}; tests that run plait in workers would test stale code. Run ${FIX} and fix what it reports.`,
    );
  }
}

export default function setup(project: TestProject): void {
  ensureFreshDist();
  project.onTestsRerun(() => ensureFreshDist());
}
