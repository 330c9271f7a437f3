/**
 * safetensors (github.com/huggingface/safetensors): an 8-byte little-endian u64 N, N bytes of
 * UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }`
 * padded with spaces, then the tensors' raw little-endian bytes, offsets relative to the end
 * of the header. WASM memory is little-endian, so tensor bytes go to and from disk as they are.
 */
import { readFileSync } from "node:fs";
import { bytesOf, type DType } from "../core/dtype.ts";
import { runtime } from "../core/runtime.ts";
import { type Shape, shapeStr, Tensor } from "../core/tensor.ts";
import { writeFileAtomic } from "./files.ts";

const FILE_DTYPE: Record<DType, string> = { f64: "F64", f32: "F32", f16: "F16", bf16: "BF16", i32: "I32", u8: "U8" };
const DTYPE_OF = new Map(Object.entries(FILE_DTYPE).map(([d, f]) => [f, d as DType]));
const METADATA = "__metadata__";

/** One tensor of a validated header: where its bytes lie in the file. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
  /** Absolute byte offsets in the file. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Record<string, string>;
}

/** Writes `tensors` to `path` as safetensors, atomically (a temporary file renamed over it). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, "writeSafetensors"));
}

/**
 * Reads a safetensors file into new tensors (owned by the enclosing scope, if any). The whole
 * file is checked before any tensor is allocated: a bad file throws and allocates nothing.
 */
export function readSafetensors(path: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`plait: readSafetensors: ${path}: cannot read the file (${(e as Error).message})`);
  }
  const header = parseSafetensorsHeader(bytes, path, "readSafetensors");
  return { tensors: materialise(bytes, header.entries), metadata: header.metadata };
}

/**
 * The file's bytes as chunks: the header, then views of the tensors' memory (valid until
 * those tensors are disposed). Tensors are laid out by element size, largest first, then by
 * name, so each starts aligned to its element size in the file.
 */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> | undefined,
  op: string,
): Uint8Array[] {
  if (tensors === null || typeof tensors !== "object") {
    throw new TypeError(`plait: ${op}: tensors must be an object of named tensors, got ${String(tensors)}`);
  }
  const named = Object.entries(tensors);
  for (const [name, t] of named) {
    if (name === METADATA) throw new TypeError(`plait: ${op}: the name ${METADATA} is reserved for metadata`);
    if (!(t instanceof Tensor)) throw new TypeError(`plait: ${op}: tensors["${name}"] is not a Tensor`);
    if (t.disposed) throw new Error(`plait: ${op}: tensors["${name}"] was disposed`);
  }
  if (metadata !== undefined) checkMetadata(metadata, `plait: ${op}: metadata`);
  named.sort(([a, x], [b, y]) => bytesOf(y.dtype) - bytesOf(x.dtype) || (a < b ? -1 : a > b ? 1 : 0));
  let offset = 0;
  const entries = named.map(([name, t]) => {
    const info = { dtype: FILE_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
    return [name, info] as const;
  });
  const json = JSON.stringify(Object.fromEntries(metadata ? [[METADATA, metadata], ...entries] : entries));
  const text = new TextEncoder().encode(json);
  const n = Math.ceil(text.length / 8) * 8; // keeps the data 8-byte aligned in the file
  const head = new Uint8Array(8 + n).fill(0x20, 8 + text.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(text, 8);
  const memory = runtime().memory.buffer;
  return [head, ...named.map(([, t]) => new Uint8Array(memory, t.ptr, t.byteLength))];
}

/** Validates everything about a safetensors file's layout without allocating a tensor. */
export function parseSafetensorsHeader(bytes: Uint8Array, file: string, op: string): SafetensorsHeader {
  const fail = (what: string) => new Error(`plait: ${op}: ${file}: ${what}`);
  if (bytes.length < 8) throw fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    throw fail(`header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  }
  const dataStart = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw fail(`header must be a JSON object, got ${JSON.stringify(header)?.slice(0, 80)}`);
  const metadata = header[METADATA] ?? {};
  checkMetadata(metadata, `plait: ${op}: ${file}: ${METADATA}`);
  const dataLength = bytes.length - dataStart;
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA) continue;
    const bad = (what: string) => fail(`tensor "${name}": ${what}, got ${JSON.stringify(info)?.slice(0, 120)}`);
    if (!isPlainObject(info)) throw bad("expected { dtype, shape, data_offsets }");
    const dtype = DTYPE_OF.get(info.dtype as string);
    if (typeof info.dtype !== "string" || dtype === undefined) {
      throw bad(`unsupported dtype ${JSON.stringify(info.dtype)} (plait reads ${[...DTYPE_OF.keys()].join(", ")})`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad("shape must be an array of non-negative integers");
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1]) {
      throw bad("data_offsets must be [begin, end] with 0 ≤ begin ≤ end");
    }
    const bytesNeeded = shape.reduce((a: number, d: number) => a * d, 1) * bytesOf(dtype);
    if (!Number.isSafeInteger(bytesNeeded)) throw bad(`shape ${shapeStr(shape)} is too large`);
    if (offs[1] - offs[0] !== bytesNeeded) {
      throw fail(
        `tensor "${name}": data_offsets [${offs}] hold ${offs[1] - offs[0]} bytes, but ${info.dtype} of shape ${shapeStr(shape)} needs ${bytesNeeded}`,
      );
    }
    if (offs[1] > dataLength) {
      throw fail(`tensor "${name}": data_offsets [${offs}] run past the end of the data (${dataLength} bytes)`);
    }
    entries.push({
      name,
      dtype,
      shape: Object.freeze([...shape]),
      begin: dataStart + offs[0],
      end: dataStart + offs[1],
    });
  }
  checkPacking(entries, dataStart, bytes.length, fail);
  return { entries, metadata: { ...(metadata as Record<string, string>) } };
}

/** New tensors holding the entries' bytes: all of them, or none if an allocation fails. */
export function materialise(bytes: Uint8Array, entries: readonly SafetensorsEntry[]): Record<string, Tensor> {
  const made: Tensor[] = [];
  try {
    for (const e of entries) made.push(new Tensor(e.shape, e.dtype));
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
  const memory = runtime().memory.buffer;
  made.forEach((t, i) => {
    new Uint8Array(memory, t.ptr, t.byteLength).set(bytes.subarray(entries[i].begin, entries[i].end));
  });
  return Object.fromEntries(entries.map((e, i) => [e.name, made[i]]));
}

/** Tensors must tile the data exactly: sorted by offset, each starts where the previous ended. */
function checkPacking(entries: SafetensorsEntry[], dataStart: number, fileEnd: number, fail: (w: string) => Error) {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const rel = (e: SafetensorsEntry) => `[${e.begin - dataStart}, ${e.end - dataStart}]`;
  let at = dataStart;
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (e.begin < at) throw fail(`tensors "${prev!.name}" ${rel(prev!)} and "${e.name}" ${rel(e)} overlap`);
    if (e.begin > at) {
      throw fail(`gap of ${e.begin - at} bytes before tensor "${e.name}" ${rel(e)}: data must be packed without gaps`);
    }
    at = e.end;
    prev = e;
  }
  if (at < fileEnd) throw fail(`${fileEnd - at} trailing bytes after the last tensor's data`);
}

function checkMetadata(metadata: unknown, what: string): void {
  if (!isPlainObject(metadata)) throw new TypeError(`${what} must be an object of strings, got ${String(metadata)}`);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new TypeError(`${what} must map strings to strings, but "${k}" is ${String(v)}`);
  }
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** An object literal or JSON object (not an array, class instance or typed array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
