// SLURM's hostlist syntax, as `scontrol show hostnames` reads it: hosts separated by commas or
// whitespace; a host may hold bracketed ranges, `node[1,5-9]`, `gpu[001-016]` (zero-padded to the
// width of the lower bound), several in one name (`rack[1-2]-n[01-02]`, every combination, the
// leftmost varying slowest). Expansion is lazy so the first host of a huge list costs nothing.

/** One piece of a host pattern: literal text, or the numbers a bracket lists (with padding). */
type Piece = string | { start: number; end: number; width: number }[];

/** A malformed hostlist: names the list, where it went wrong and why. */
export class HostlistError extends Error {
  constructor(list: string, why: string) {
    super(`plait: malformed SLURM hostlist ${JSON.stringify(list)}: ${why}`);
    this.name = "HostlistError";
  }
}

/** Splits a hostlist into host patterns at commas and whitespace outside brackets. */
function splitPatterns(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of list) {
    if (ch === "[") {
      if (depth > 0) throw new HostlistError(list, "nested '['");
      depth++;
    } else if (ch === "]") {
      if (depth === 0) throw new HostlistError(list, "']' without '['");
      depth--;
    }
    if (depth === 0 && (ch === "," || /\s/.test(ch))) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (depth > 0) throw new HostlistError(list, "'[' without ']'");
  if (cur) out.push(cur);
  return out;
}

function parsePattern(list: string, pattern: string): Piece[] {
  const pieces: Piece[] = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  for (let m = re.exec(pattern); m; m = re.exec(pattern)) {
    if (m.index > last) pieces.push(pattern.slice(last, m.index));
    const ranges = m[1].split(",").map((part) => {
      const r = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
      if (!r) throw new HostlistError(list, `bad range ${JSON.stringify(part)} in [${m![1]}]`);
      const start = Number(r[1]);
      const end = r[2] === undefined ? start : Number(r[2]);
      if (end < start) throw new HostlistError(list, `range ${part.trim()} ends before it starts`);
      return { start, end, width: r[1].length };
    });
    pieces.push(ranges);
    last = m.index + m[0].length;
  }
  if (last < pattern.length) pieces.push(pattern.slice(last));
  return pieces;
}

function* expandPieces(pieces: Piece[], i: number, prefix: string): Generator<string> {
  if (i === pieces.length) {
    yield prefix;
    return;
  }
  const p = pieces[i];
  if (typeof p === "string") {
    yield* expandPieces(pieces, i + 1, prefix + p);
    return;
  }
  for (const { start, end, width } of p) {
    for (let n = start; n <= end; n++) yield* expandPieces(pieces, i + 1, prefix + String(n).padStart(width, "0"));
  }
}

/** The hosts of a SLURM hostlist, in order, lazily. Throws `HostlistError` on bad syntax. */
export function* hostlistHosts(list: string): Generator<string> {
  const patterns = splitPatterns(list).map((p) => parsePattern(list, p));
  for (const pieces of patterns) yield* expandPieces(pieces, 0, "");
}

/** Every host of a SLURM hostlist (`"a[01-03],b"` → `["a01", "a02", "a03", "b"]`). */
export function expandHostlist(list: string): string[] {
  return [...hostlistHosts(list)];
}

/** The first host of a SLURM hostlist, or null for an empty list. */
export function firstHost(list: string): string | null {
  const it = hostlistHosts(list).next();
  return it.done ? null : it.value;
}
