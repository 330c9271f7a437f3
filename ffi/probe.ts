// What every library entry of `plait env` says, and the one way to fill it: look for the library
// (ffi/find.ts), then ask it what it is. A probe never throws: whatever goes wrong is its reason.
import { type Attempt, LibraryError, type LibraryMode, type LibrarySpec, libraryMode, openLibrary } from "./find.ts";
import { message, type NativeLibrary } from "./native.ts";

export interface Probe {
  /** The library was found (it may still fail to load or lack a symbol). */
  found: boolean;
  /** plait can use it now. */
  usable: boolean;
  /** Why it is not found or not usable (or a caveat when usable); null when there is nothing to say. */
  reason: string | null;
  /** The path loaded (absolute, or the soname the dynamic loader resolved). */
  path: string | null;
  /** How the path was found: the environment variable, the ldconfig cache, a CUDA folder, a wheel. */
  via: string | null;
  /** Candidates that did not work before the one used, or all of them. */
  tried: readonly Attempt[];
  /** Folders searched that held no matching file (when not found). */
  searched?: readonly string[];
  /** How to install it (when not found or not usable). */
  install?: string;
}

/** A probe of a library that is not there, or could not be asked: found/usable false and why. */
export function absent(reason: string, tried: readonly Attempt[] = [], found = false): Probe {
  return { found, usable: false, reason, path: null, via: null, tried };
}

/**
 * Opens the library `spec` names (its environment variable decides the mode) and runs `ask` on
 * it. An error while opening is the probe's reason (and the candidates tried); an error in `ask`
 * makes the library found but not usable.
 */
export function probeLibrary<T extends object>(
  spec: LibrarySpec,
  required: readonly string[],
  ask: (lib: NativeLibrary) => T & { usable?: boolean; reason?: string | null },
  mode: LibraryMode = libraryMode(spec),
): Probe & Partial<T> {
  type Out = Probe & Partial<T>;
  let found: ReturnType<typeof openLibrary>;
  try {
    found = openLibrary(spec, mode, required);
  } catch (e) {
    if (e instanceof LibraryError) {
      const probe = absent(e.reason, e.tried, e.kind === "unusable");
      if (e.kind === "missing" || e.kind === "unusable")
        Object.assign(probe, { searched: e.searched, install: e.install });
      return probe as Out;
    }
    return absent(`probe failed: ${message(e)}`) as Out;
  }
  const base: Probe = { found: true, usable: true, reason: null, path: found.path, via: found.via, tried: found.tried };
  try {
    return { ...base, ...ask(found.lib) };
  } catch (e) {
    return { ...base, usable: false, reason: `${found.path}: ${message(e)}` } as Out;
  }
}

/** Reads a NUL-terminated string out of a byte buffer. */
export function cString(bytes: Uint8Array, length = bytes.indexOf(0)): string {
  return new TextDecoder().decode(bytes.subarray(0, length < 0 ? bytes.length : length)).replace(/\0.*$/s, "");
}
