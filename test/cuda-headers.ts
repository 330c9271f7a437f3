// A small reader of the CUDA headers for the ABI tests: enum values, #defines and function
// prototypes, with comments removed. Enough for the declarations plait binds, not a C parser.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CUBLAS_SPEC, CUDART_SPEC } from "../ffi/cuda.ts";
import { candidates } from "../ffi/find.ts";

let dirs: string[] | undefined;

/**
 * Folders that may hold CUDA headers: CUDA_HOME, /usr/local/cuda*, and the include folder beside
 * a pip wheel's library (site-packages/nvidia/cublas/{lib,include}, as on the GPU machines).
 */
export function headerDirs(): string[] {
  dirs ??= findHeaderDirs();
  return dirs;
}

function findHeaderDirs(): string[] {
  const dirs: string[] = [];
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH]) if (home) dirs.push(join(home, "include"));
  if (existsSync("/usr/local")) {
    for (const n of readdirSync("/usr/local").sort())
      if (/^cuda(-[\d.]+)?$/.test(n)) dirs.push(`/usr/local/${n}/include`);
  }
  for (const spec of [CUDART_SPEC, CUBLAS_SPEC]) {
    for (const c of candidates(spec).list)
      if (c.via.startsWith("python wheel")) dirs.push(join(dirname(dirname(c.path)), "include"));
  }
  return [...new Set(dirs)].filter((d) => existsSync(d));
}

/** The first header named `name` in headerDirs(), or undefined. */
export function findHeader(name: string): string | undefined {
  for (const d of headerDirs()) if (existsSync(join(d, name))) return join(d, name);
  return undefined;
}

const cache = new Map<string, string>();

/** The header's text without comments (cached). */
export function headerText(path: string): string {
  let t = cache.get(path);
  if (t === undefined) {
    t = readFileSync(path, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, " ")
      .replace(/\/\/[^\n]*/g, "")
      .replace(/__dv\([^)]*\)/g, ""); // default arguments, which only C++ sees
    cache.set(path, t);
  }
  return t;
}

/** The value of enum member or #define `name` (decimal, hex, or negative), or undefined. */
export function constantValue(text: string, name: string): number | undefined {
  const num = "(-?\\s*(?:0x[0-9a-fA-F]+|\\d+))[uUlL]*";
  const m =
    new RegExp(`\\b${name}\\s*=\\s*${num}\\s*[,}]`).exec(text) ??
    new RegExp(`#define\\s+${name}\\s+\\(?${num}\\)?\\s*\\n`).exec(text);
  return m ? Number(m[1].replace(/\s/g, "")) : undefined;
}

/** `#define name target` where target is a plain identifier or a PTDS/PTSZ wrapper around one. */
export function defineTarget(text: string, name: string): string | undefined {
  const m = new RegExp(`#define\\s+${name}\\s+(?:__CUDA(?:RT)?_API_PT(?:DS|SZ)\\((\\w+)\\)|(\\w+))\\s*\\n`).exec(text);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A C declaration: its return type and each parameter's type (names dropped). */
export interface Declaration {
  returns: string;
  params: string[];
}

const QUALIFIERS =
  /\b(extern|__host__|__device__|__cudart_builtin__|CUDARTAPI|CUDAAPI|CUBLASAPI|CUBLASWINAPI|__CUDA_DEPRECATED|CUDART_CB)\b/g;

/** The first declaration of function `name` in `text`, or undefined. */
export function declaration(text: string, name: string): Declaration | undefined {
  const m = new RegExp(`(^|[;}\\n])([\\w\\s\\*]*?)\\b${name}\\s*\\(([^()]*)\\)\\s*;`, "m").exec(text);
  if (!m) return undefined;
  const returns = normalize(m[2].replace(QUALIFIERS, " "));
  const raw = m[3].trim();
  const params = raw === "" || raw === "void" ? [] : raw.split(",").map((p) => normalize(dropName(p)));
  return { returns, params };
}

function dropName(param: string): string {
  const p = param.replace(/__dv\([^)]*\)/g, "").trim();
  // the last identifier is the name when something precedes it (a type), e.g. "const void *src"
  const m = /^(.*?[\s*])(\w+)\s*$/.exec(p);
  return m && /\w/.test(m[1]) ? m[1] : p;
}

/** One spelling per type: single spaces, "*" attached to the type with a space before. */
export function normalize(type: string): string {
  return type
    .replace(/\b(enum|struct)\s+/g, "")
    .replace(/\s*\*\s*/g, " *")
    .replace(/\s+/g, " ")
    .replace(/\* \*/g, "**")
    .replace(/ \*\*/g, " **")
    .trim();
}
