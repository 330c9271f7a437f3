// Library discovery, shared by every binding: where a native library may be, in the order tried,
// and the one error that says what was tried when none of it works.
//
// Order: an explicit path (an option, else the library's environment variable); then each
// standard soname, as a file in LD_LIBRARY_PATH or the `ldconfig -p` cache, else as a bare name
// for the dynamic loader; then other files of the cache that match the library's pattern
// (libcublas.so.<any>); then CUDA_HOME and /usr/local/cuda*/lib*; then the nvidia/<name>/lib
// folders of installed Python nvidia-* wheels (where pip puts NCCL and cuBLAS).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { denyReason, LoadError, message, type NativeLibrary, openNative } from "./native.ts";

export interface LibrarySpec {
  /** What the library is, in messages: "BLAS", "MPI", "CUDA runtime". */
  readonly name: string;
  /** The environment variable that sets its mode: auto, off, or a path. */
  readonly env: string;
  /** Standard sonames, in the order tried. */
  readonly sonames: readonly string[];
  /** Other file names to accept from the ldconfig cache and the folders searched. */
  readonly pattern?: RegExp;
  /** Search CUDA_HOME and /usr/local/cuda* too. */
  readonly cuda?: boolean;
  /** Python wheel folders to search: site-packages/nvidia/<wheel>/lib. */
  readonly wheels?: readonly string[];
  /** The command that installs it (Debian/Ubuntu), or how to get it. */
  readonly install: string;
}

/**
 * off: never load it; auto: search, and fall back quietly if absent; path: this file or soname
 * only. `from` says who asked: the option's name or the environment variable's.
 */
export type LibraryMode =
  | { kind: "auto" }
  | { kind: "off"; from: string }
  | { kind: "path"; path: string; from: string };

/**
 * The mode from an explicit option (configure() or a function's option), else the library's
 * environment variable, else auto. The value is "auto", "off" (also "0", "false", "none") or a
 * path / soname.
 */
export function libraryMode(spec: LibrarySpec, option?: string, optionName = "option"): LibraryMode {
  const raw = option ?? readEnv(spec.env);
  const value = raw?.trim() ?? "";
  if (value === "" || value.toLowerCase() === "auto") return { kind: "auto" };
  const from = option !== undefined ? optionName : spec.env;
  if (["off", "0", "false", "none"].includes(value.toLowerCase())) return { kind: "off", from };
  return { kind: "path", path: value, from };
}

/** Where a candidate came from, for reports. */
export interface Candidate {
  readonly path: string;
  readonly via: string;
}

/** A candidate that did not work, and why. */
export interface Attempt extends Candidate {
  readonly error: string;
}

/** A library that loaded and has every required symbol. */
export interface Found {
  readonly lib: NativeLibrary;
  readonly path: string;
  readonly via: string;
  readonly tried: readonly Attempt[];
}

/**
 * The error for a library that cannot be used: it names the library, every path tried with the
 * loader's reason, and how to install it. `kind` says which case: "off" (turned off), "ffi" (no
 * FFI in this runtime, e.g. Deno without --allow-ffi), "missing" (nothing found), "unusable"
 * (found, but it failed to load, lacks a symbol, or failed its check).
 */
export class LibraryError extends Error {
  constructor(
    readonly library: string,
    readonly kind: "off" | "ffi" | "missing" | "unusable",
    readonly reason: string,
    readonly tried: readonly Attempt[],
    readonly install: string,
    readonly searched: readonly string[] = [],
  ) {
    super(describeFailure(library, kind, reason, tried, install, searched));
    this.name = "LibraryError";
  }
}

function describeFailure(
  library: string,
  kind: LibraryError["kind"],
  reason: string,
  tried: readonly Attempt[],
  install: string,
  searched: readonly string[],
): string {
  const lines = [`plait: ${library}: ${reason}`];
  if (tried.length > 0) {
    lines.push("tried:");
    for (const t of tried) lines.push(`  ${t.path} (${t.via}): ${t.error}`);
  }
  if (searched.length > 0) lines.push(`searched, no match: ${searched.join(", ")}`);
  if (kind === "missing" || kind === "unusable") lines.push(`install: ${install}`);
  return lines.join("\n");
}

/**
 * Every candidate path for `spec` in auto mode, in the order tried, without duplicates; and the
 * existing folders that were searched and held no matching file.
 */
export function candidates(spec: LibrarySpec): { list: Candidate[]; searched: string[] } {
  const searched: string[] = [];
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const add = (path: string, via: string) => {
    if (!seen.has(path)) {
      seen.add(path);
      out.push({ path, via });
    }
  };
  const ldPath = (readEnv("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean);
  const cache = ldconfigCache();
  const matches = (file: string) => spec.sonames.includes(file) || (spec.pattern?.test(file) ?? false);
  for (const soname of spec.sonames) {
    const dir = ldPath.find((d) => existsSync(join(d, soname)));
    if (dir) add(join(dir, soname), "LD_LIBRARY_PATH");
    const cached = cache.entries.find((e) => e.file === soname);
    if (cached) add(cached.path, "ldconfig cache");
    if (!dir && !cached) add(soname, "dynamic loader search");
  }
  for (const e of cache.entries) if (spec.pattern?.test(e.file)) add(e.path, "ldconfig cache");
  const dirs: Candidate[] = [];
  if (spec.cuda) dirs.push(...cudaDirs());
  if (spec.wheels) dirs.push(...wheelDirs(spec.wheels));
  for (const { path: dir, via } of dirs) {
    if (!existsSync(dir)) continue;
    const files = listDir(dir).filter(matches).sort(bySonameOrder(spec));
    if (files.length === 0) searched.push(dir);
    for (const file of files) add(join(dir, file), via);
  }
  return { list: out, searched };
}

/** Sonames first in their listed order, then the rest newest version first. */
function bySonameOrder(spec: LibrarySpec): (a: string, b: string) => number {
  const rank = (f: string) => {
    const i = spec.sonames.indexOf(f);
    return i < 0 ? spec.sonames.length : i;
  };
  return (a, b) => rank(a) - rank(b) || b.localeCompare(a, undefined, { numeric: true });
}

/**
 * Opens the library `mode` names: the explicit path only, or the first auto candidate that loads,
 * exports every `required` symbol and passes `check` (which throws to reject it, e.g. a wrong
 * ABI). Throws LibraryError otherwise. `off` throws too (kind "off"): callers decide what off means.
 */
export function openLibrary(
  spec: LibrarySpec,
  mode: LibraryMode,
  required: readonly string[],
  check?: (lib: NativeLibrary) => void,
  options: { global?: boolean } = {},
): Found {
  if (mode.kind === "off") {
    const by = mode.from === spec.env ? `${spec.env}=${readEnv(spec.env)}` : `${mode.from} set to off`;
    throw new LibraryError(spec.name, "off", `turned off (${by})`, [], spec.install);
  }
  const denied = denyReason("ffi");
  if (denied) throw new LibraryError(spec.name, "ffi", denied, [], spec.install);
  const { list, searched } =
    mode.kind === "path" ? { list: [{ path: mode.path, via: mode.from }], searched: [] } : candidates(spec);
  const tried: Attempt[] = [];
  for (const c of list) {
    if (c.path.includes("/") && !existsSync(c.path)) {
      tried.push({ ...c, error: "no such file" });
      continue;
    }
    try {
      const lib = openNative(c.path, options);
      const missing = required.filter((s) => !lib.has(s));
      if (missing.length > 0)
        throw new Error(`loads, but lacks symbol${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
      check?.(lib);
      return { lib, path: c.path, via: c.via, tried };
    } catch (e) {
      if (e instanceof LoadError && e.reason.startsWith("the koffi package")) {
        throw new LibraryError(spec.name, "ffi", e.reason, tried, spec.install);
      }
      tried.push({ ...c, error: e instanceof LoadError ? e.reason : message(e) });
    }
  }
  // unusable: something is there (it loaded, or exists and failed to load); missing: nothing is
  const unusable = tried.some((t) => !NOT_THERE.test(t.error));
  const reason =
    mode.kind === "path"
      ? `${mode.path} (from ${mode.from}) cannot be used`
      : unusable
        ? "no usable library found"
        : "not found";
  const kind = unusable ? "unusable" : "missing";
  throw new LibraryError(spec.name, kind, reason, tried, spec.install, searched);
}

interface CacheEntry {
  file: string;
  path: string;
}

let cache: { entries: CacheEntry[]; error?: string } | undefined;

/**
 * The dynamic loader's cache as `ldconfig -p` prints it (soname → path), read once per process.
 * Empty, with the reason, where ldconfig cannot run (no such program, or Deno without --allow-run).
 */
export function ldconfigCache(): { entries: readonly CacheEntry[]; error?: string } {
  cache ??= readLdconfig();
  return cache;
}

function readLdconfig(): { entries: CacheEntry[]; error?: string } {
  const denied = denyReason("run");
  if (denied) return { entries: [], error: denied };
  for (const cmd of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    try {
      const text = execFileSync(cmd, ["-p"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 });
      const entries: CacheEntry[] = [];
      for (const line of text.split("\n")) {
        const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/.exec(line);
        if (m && archMatches(m[2])) entries.push({ file: m[1], path: m[3] });
      }
      return { entries };
    } catch {}
  }
  return { entries: [], error: "ldconfig did not run" };
}

/** Whether an ldconfig entry's flags (e.g. "libc6,x86-64") fit this process. */
function archMatches(flags: string): boolean {
  const arch = (globalThis as any).process?.arch ?? "x64";
  if (arch === "x64") return flags.includes("x86-64");
  if (arch === "arm64") return flags.includes("AArch64");
  return true;
}

/** CUDA_HOME (CUDA_PATH) and /usr/local/cuda*, each with its lib64, lib and targets/<arch>/lib. */
function cudaDirs(): Candidate[] {
  const roots: Candidate[] = [];
  for (const v of ["CUDA_HOME", "CUDA_PATH"]) {
    const root = readEnv(v);
    if (root) roots.push({ path: root, via: v });
  }
  for (const name of listDir("/usr/local")
    .filter((n) => /^cuda(-[\d.]+)?$/.test(n))
    .sort(newestFirst)) {
    roots.push({ path: `/usr/local/${name}`, via: `/usr/local/${name}` });
  }
  const target = (globalThis as any).process?.arch === "arm64" ? "sbsa-linux" : "x86_64-linux";
  const seen = new Set<string>(); // /usr/local/cuda is usually a link to /usr/local/cuda-<version>
  const unique = roots.filter(({ path }) => {
    let real = path;
    try {
      real = realpathSync(path);
    } catch {}
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
  return unique.flatMap(({ path, via }) =>
    ["lib64", "lib", `targets/${target}/lib`, "compat"].map((sub) => ({ path: join(path, sub), via })),
  );
}

const NOT_THERE = /^no such file$|cannot open shared object file: No such file/i;

const newestFirst = (a: string, b: string) => b.localeCompare(a, undefined, { numeric: true });

let sitePackages: string[] | undefined;

/** nvidia/<wheel>/lib under every site-packages folder found. */
function wheelDirs(wheels: readonly string[]): Candidate[] {
  sitePackages ??= findSitePackages();
  return sitePackages.flatMap((site) =>
    wheels.map((w) => ({ path: join(site, "nvidia", w, "lib"), via: `python wheel nvidia-${w}` })),
  );
}

/**
 * Python's site-packages folders: those of an active virtualenv or conda environment, then what
 * `python3 -c site.getsitepackages()` prints (where it may run), then the usual system ones.
 */
function findSitePackages(): string[] {
  const dirs: string[] = [];
  for (const v of ["VIRTUAL_ENV", "CONDA_PREFIX"]) {
    const prefix = readEnv(v);
    if (prefix) for (const py of listDir(join(prefix, "lib"))) dirs.push(join(prefix, "lib", py, "site-packages"));
  }
  if (denyReason("run") === undefined) {
    try {
      const script = "import site,sys;print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]))";
      const out = execFileSync("python3", ["-c", script], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        timeout: 5000,
      });
      dirs.push(...out.split("\n").filter(Boolean));
    } catch {}
  }
  for (const base of ["/usr/local/lib", "/usr/lib"]) {
    for (const py of listDir(base).filter((n) => /^python3/.test(n))) {
      dirs.push(join(base, py, "site-packages"), join(base, py, "dist-packages"));
    }
  }
  return [...new Set(dirs)].filter((d) => existsSync(join(d, "nvidia")));
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Reads an environment variable on Node, Deno and Bun alike (undefined when not allowed). */
export function readEnv(name: string): string | undefined {
  try {
    return (globalThis as any).process?.env?.[name];
  } catch {
    return undefined;
  }
}

/** For tests: forget the cached ldconfig and site-packages lookups. */
export function forgetSearchCache(): void {
  cache = undefined;
  sitePackages = undefined;
}
