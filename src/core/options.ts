/**
 * The one check every public function with an options object runs: `opts` is undefined or a
 * plain object whose keys are all known. An unknown key (a typo such as `{ thread: 2 }`) is an
 * error naming it and the keys that are known, never silently ignored. Returns `opts ?? {}`.
 */
export function checkOptions<T extends object>(op: string, opts: T | undefined, known: readonly string[]): T {
  if (opts === undefined) return {} as T;
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new TypeError(`plait: ${op}: options must be an object, got ${opts === null ? "null" : typeof opts}`);
  }
  const unknown = Object.keys(opts).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(
      `plait: ${op}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known: ${known.join(", ") || "none"}`,
    );
  }
  return opts;
}
