// The one place that loads koffi: lazily and synchronously, on the first call that needs a native
// library (a BLAS-backed matmul, `plait env`, a comm backend). Importing plait loads neither koffi
// nor any library. Everything above this file sees only `NativeLibrary`, so another FFI (bun:ffi,
// Deno.dlopen, node:ffi) could stand in for koffi on one runtime without touching the bindings.
import { createRequire } from "node:module";

/** A function of a loaded library, as the FFI calls it. */
export type NativeFunction = (...args: any[]) => any;

/** A loaded shared library. */
export interface NativeLibrary {
  /** What was passed to dlopen: an absolute path, or a soname the dynamic loader resolved. */
  readonly path: string;
  /** Binds a C prototype, e.g. `"int f(_Out_ int *x)"`; throws when the symbol is missing. */
  func(prototype: string): NativeFunction;
  /** Whether the library exports `symbol`. */
  has(symbol: string): boolean;
}

/** The part of koffi's API plait uses. */
interface Koffi {
  load(
    path: string,
    options?: { lazy?: boolean; global?: boolean },
  ): {
    func(prototype: string): NativeFunction;
    symbol(name: string): unknown;
  };
  address(value: unknown): bigint;
  struct(name: string, fields: Record<string, unknown>): unknown;
  array(type: string, length: number): unknown;
  version?: string;
}

/** Which JavaScript runtime runs plait. */
export function runtimeName(): "node" | "deno" | "bun" {
  const g = globalThis as any;
  if (g.Deno?.version?.deno) return "deno";
  if (g.process?.versions?.bun) return "bun";
  return "node";
}

/**
 * Whether Deno granted a permission without asking (`--allow-ffi`, `--allow-run`, `-A`); always
 * true on Node and Bun. A "prompt" state counts as not granted: a library probe must never stop
 * a training script to ask.
 */
export function denyReason(permission: "ffi" | "run"): string | undefined {
  const deno = (globalThis as any).Deno;
  if (runtimeName() !== "deno" || typeof deno?.permissions?.querySync !== "function") return undefined;
  const { state } = deno.permissions.querySync({ name: permission });
  if (state === "granted") return undefined;
  return `Deno runs without --allow-${permission} (permission state: ${state}); run with deno run --allow-${permission}`;
}

let koffi: Koffi | undefined;
let koffiFailure: string | undefined;

/** Why no native library can be loaded in this process, or undefined when koffi loads. */
export function ffiUnavailable(): string | undefined {
  if (koffi) return undefined;
  if (koffiFailure) return koffiFailure;
  const denied = denyReason("ffi");
  if (denied) return denied; // not cached: a later Deno.permissions.request() may grant it
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch (e) {
    koffiFailure = `the koffi package (plait's FFI) did not load on ${runtimeName()}: ${message(e)}; reinstall plait's dependencies (npm install)`;
  }
  return koffiFailure;
}

/** koffi's version, when it is loaded. */
export function koffiVersion(): string | undefined {
  if (ffiUnavailable() !== undefined) return undefined;
  try {
    return (createRequire(import.meta.url)("koffi/package.json") as { version: string }).version;
  } catch {
    return koffi?.version;
  }
}

/** Thrown when a library cannot be opened at `path`; `reason` is the loader's own words. */
export class LoadError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/**
 * dlopens `path` (an absolute path or a soname). Throws LoadError with the loader's reason; the
 * caller (ffi/find.ts) turns a list of them into the error the user sees.
 */
export function openNative(path: string, options: { global?: boolean } = {}): NativeLibrary {
  const unavailable = ffiUnavailable();
  if (unavailable) throw new LoadError(path, unavailable);
  let handle: ReturnType<Koffi["load"]>;
  try {
    handle = koffi!.load(path, { global: options.global === true });
  } catch (e) {
    throw new LoadError(path, message(e).replace(/^Failed to load shared library: /, ""));
  }
  return {
    path,
    func(prototype) {
      try {
        return handle.func(prototype);
      } catch (e) {
        const name = /(\w+)\s*\(/.exec(prototype)?.[1] ?? prototype;
        throw new Error(`${path} has no usable symbol ${name}: ${message(e)}`);
      }
    },
    has(symbol) {
      try {
        handle.symbol(symbol);
        return true;
      } catch {
        return false;
      }
    },
  };
}

const opaque = new Map<string, number>();

/**
 * Declares `struct name { uint8_t bytes[size]; }` once per process, so that prototypes can take
 * it by value under `name` (NCCL's 128-byte ncclUniqueId); a value is passed as
 * `{ bytes: Uint8Array }`. Declaring a name again with another size throws.
 */
export function declareOpaqueStruct(name: string, size: number): void {
  const known = opaque.get(name);
  if (known === size) return;
  if (known !== undefined)
    throw new Error(`plait: struct ${name} is declared already with ${known} bytes, not ${size}`);
  const unavailable = ffiUnavailable();
  if (unavailable) throw new Error(unavailable);
  koffi!.struct(name, { bytes: koffi!.array("uint8_t", size) });
  opaque.set(name, size);
}

/** The address koffi passes for a typed array or buffer (tests check zero copy with it). */
export function addressOf(value: unknown): bigint {
  const unavailable = ffiUnavailable();
  if (unavailable) throw new Error(unavailable);
  return koffi!.address(value);
}

export const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
