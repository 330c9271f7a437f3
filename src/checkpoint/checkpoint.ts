import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { checkDType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import type { Tree } from "../core/tree.ts";
import { checkTreeLike, TensorSpec } from "../core/treeCheck.ts";
import { siblingName, syncDir, writeNewFile } from "./files.ts";
import {
  encodeSafetensors,
  isPlainObject,
  materialise,
  parseSafetensorsHeader,
  type SafetensorsEntry,
} from "./safetensors.ts";

/**
 * What `load` returns unless told the type: the parameters, and anything else that was saved
 * (optimizer, RNG, scaler, step, config). `save` takes any object with `params`: a trainer's
 * TrainState, or a plain `{ params, step, ... }`.
 */
export interface CheckpointState {
  params: Tree;
  [key: string]: unknown;
}

export const PARAMS_FILE = "params.safetensors";
/** Every tensor outside `params` (optimizer slots, ...), keyed by its path from the state root. */
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "state.json";
const FILES = [PARAMS_FILE, OPTIMIZER_FILE, STATE_FILE];
const FORMAT = "plait-checkpoint";
const VERSION = 1;
/** Marks the values JSON cannot hold: tensors, NaN, ±Infinity, -0, undefined. */
const TAG = "$plait";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Segment = string | number;
interface TensorRef {
  file: string;
  key: string;
  dtype: string;
  shape: number[];
}

/**
 * Saves `state` into the directory `dir`: tensors under `state.params` to params.safetensors
 * (keys are their paths, like `layers.0.w`), all other tensors to optimizer.safetensors, and
 * everything else, with the structure and a SHA-256 of each tensor file, to state.json.
 * The files are written into a fresh directory beside `dir` that then replaces it, so a crash
 * leaves the previous checkpoint or the new one, never a mixture. `dir` may exist only as a
 * checkpoint directory (holding nothing but these three files).
 */
export function save<S extends { readonly params: Tree }>(dir: string, state: S): void {
  if (!isPlainObject(state)) throw new TypeError(`plait: save: state must be a plain object, got ${describe(state)}`);
  if (!("params" in state)) throw new TypeError("plait: save: state.params is missing (the parameter tree)");
  const { json, files } = encodeState(state);
  const target = resolve(dir);
  checkTarget(target);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = siblingName(target, "tmp");
  mkdirSync(tmp);
  try {
    const records: Record<string, { bytes: number; sha256: string }> = {};
    for (const [file, tensors] of files) {
      const chunks = encodeSafetensors(Object.fromEntries(tensors), undefined, "save");
      const hash = createHash("sha256");
      for (const c of chunks) hash.update(c);
      writeNewFile(join(tmp, file), chunks);
      records[file] = { bytes: chunks.reduce((n, c) => n + c.length, 0), sha256: hash.digest("hex") };
    }
    const doc = { format: FORMAT, version: VERSION, files: records, state: json };
    writeNewFile(join(tmp, STATE_FILE), [new TextEncoder().encode(`${JSON.stringify(doc, null, 1)}\n`)]);
    syncDir(tmp);
    replaceDir(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

export interface LoadOptions {
  /**
   * A params tree (e.g. `model.init(rng)` or the params being trained) the checkpoint's
   * `params` must match: the same keys and array lengths, and leaves of the same dtypes and
   * shapes. A checkpoint of another model is then an error naming the first leaf that differs.
   */
  template?: Tree;
}

/**
 * Loads a checkpoint written by `save`: the same structure, with new tensors (owned by the
 * enclosing scope, if any) of the same dtypes, shapes and bits. Every file is checked against
 * state.json, and `params` against `opts.template` if given, before any tensor is allocated.
 */
export function load<S extends { readonly params: Tree } = CheckpointState>(dir: string, opts?: LoadOptions): S {
  const { template } = checkOptions("load", opts, ["template"]);
  const fail = (what: string) => new Error(`plait: load: ${dir}: ${what}`);
  let doc: any;
  try {
    doc = JSON.parse(readFileSync(join(dir, STATE_FILE), "utf8"));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw fail(
      err.code === "ENOENT" ? `no checkpoint here (${STATE_FILE} is missing)` : `${STATE_FILE}: ${err.message}`,
    );
  }
  if (!isPlainObject(doc) || doc.format !== FORMAT || doc.version !== VERSION || !isPlainObject(doc.files)) {
    throw fail(`${STATE_FILE} is not a ${FORMAT} version ${VERSION} file`);
  }
  const bytes = new Map<string, Uint8Array>();
  const entries = new Map<string, Map<string, SafetensorsEntry>>();
  for (const [file, record] of Object.entries(doc.files as Record<string, any>)) {
    if (file === STATE_FILE || !FILES.includes(file)) throw fail(`${STATE_FILE} lists an unknown file ${file}`);
    const data = readTensorFile(join(dir, file), record, fail);
    bytes.set(file, data);
    const header = parseSafetensorsHeader(data, join(dir, file), "load");
    entries.set(file, new Map(header.entries.map((e) => [e.name, e])));
  }
  // Pass 1 checks every reference against the files' headers (and the params against the
  // template, with each tensor standing for its spec); only then are tensors allocated.
  const used = new Set<SafetensorsEntry>();
  const specs = decodeState(doc.state, (ref, path) => {
    const entry = entries.get(ref.file)?.get(ref.key);
    if (!entry) throw fail(`${path} refers to tensor "${ref.key}" of ${ref.file}, which does not hold it`);
    if (entry.dtype !== ref.dtype || shapeStr(entry.shape) !== shapeStr(ref.shape)) {
      throw fail(
        `${path} is ${ref.dtype}${shapeStr(ref.shape)} in ${STATE_FILE} but ${entry.dtype}${shapeStr(entry.shape)} in ${ref.file}`,
      );
    }
    used.add(entry);
    return new TensorSpec(ref.dtype, ref.shape);
  });
  if (template !== undefined) {
    const params = isPlainObject(specs) ? specs.params : undefined;
    checkTreeLike(`load: ${dir}`, "params", params, template);
  }
  for (const [file, byName] of entries) {
    const extra = [...byName.values()].filter((e) => !used.has(e)).map((e) => e.name);
    if (extra.length > 0) throw fail(`${file} holds tensors that ${STATE_FILE} does not use: ${extra.join(", ")}`);
  }
  const tensors = new Map<string, Record<string, Tensor>>();
  try {
    for (const [file, byName] of entries) tensors.set(file, materialise(bytes.get(file)!, [...byName.values()]));
  } catch (e) {
    for (const made of tensors.values()) for (const t of Object.values(made)) t.dispose();
    throw e;
  }
  const state = decodeState(doc.state, (ref) => tensors.get(ref.file)![ref.key]);
  if (!isPlainObject(state) || !("params" in state)) throw fail(`${STATE_FILE} holds no params`);
  return state as S;
}

function readTensorFile(path: string, record: any, fail: (what: string) => Error): Uint8Array {
  let data: Uint8Array;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw fail(`cannot read ${path} (${(e as Error).message})`);
  }
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (!isPlainObject(record) || data.length !== record.bytes || sha256 !== record.sha256) {
    throw fail(
      `${path} (${data.length} bytes, sha256 ${sha256}) does not match ${STATE_FILE} (${JSON.stringify(record)}): the file changed after the save`,
    );
  }
  return data;
}

/** state.json's form of `state`, and the tensors for each safetensors file by key. */
function encodeState(state: { readonly params: Tree }): { json: Json; files: Map<string, Map<string, Tensor>> } {
  const files = new Map<string, Map<string, Tensor>>([[PARAMS_FILE, new Map()]]);
  const refs = new Map<Tensor, Json>(); // a tensor held twice is stored once and loaded as one
  const claimed = new Map<string, string>(); // file/key → path, to catch two paths with one key
  const open = new Set<object>();
  const walk = (v: unknown, path: Segment[]): Json => {
    const where = pathStr(path);
    if (v === undefined) return { [TAG]: "undefined" };
    if (v === null || typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number") {
      return Number.isFinite(v) && !Object.is(v, -0)
        ? v
        : { [TAG]: "number", value: Object.is(v, -0) ? "-0" : String(v) };
    }
    if (v instanceof Tensor) {
      if (v.disposed) throw new Error(`plait: save: ${where} is a disposed tensor`);
      const known = refs.get(v);
      if (known) return known;
      const inParams = path[0] === "params";
      const file = inParams ? PARAMS_FILE : OPTIMIZER_FILE;
      const key = (inParams ? path.slice(1) : path).join(".");
      const other = claimed.get(`${file}/${key}`);
      if (other !== undefined) throw new Error(`plait: save: ${other} and ${where} would both be "${key}" in ${file}`);
      claimed.set(`${file}/${key}`, where);
      if (!files.has(file)) files.set(file, new Map());
      files.get(file)!.set(key, v);
      const ref: Json = { [TAG]: "tensor", file, key, dtype: v.dtype, shape: [...v.shape] };
      refs.set(v, ref);
      return ref;
    }
    if (typeof v !== "object" || !(Array.isArray(v) || isPlainObject(v))) {
      throw new TypeError(
        `plait: save: ${where} is ${describe(v)}; a checkpoint holds tensors, numbers, strings, booleans, null, undefined, arrays and plain objects (save an Rng as rng.state())`,
      );
    }
    if (open.has(v)) throw new TypeError(`plait: save: ${where} contains itself`);
    open.add(v);
    let out: Json;
    if (Array.isArray(v)) {
      out = [];
      for (let i = 0; i < v.length; i++) out.push(walk(v[i], [...path, i]));
    } else {
      if (TAG in v) throw new TypeError(`plait: save: ${where} has the key ${TAG}, which checkpoints reserve`);
      out = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    }
    open.delete(v);
    return out;
  };
  return { json: walk(state, []), files };
}

/** Rebuilds a value from state.json, asking `tensorFor` for each tensor reference. */
function decodeState(json: unknown, tensorFor: (ref: TensorRef, path: string) => Tensor | TensorSpec): unknown {
  const walk = (v: unknown, path: Segment[]): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (!isPlainObject(v)) return v;
    if (!(TAG in v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    const where = pathStr(path);
    const bad = () =>
      new Error(`plait: load: ${STATE_FILE}: ${where} is a malformed ${TAG} value ${JSON.stringify(v)}`);
    switch (v[TAG]) {
      case "undefined":
        return undefined;
      case "number":
        if (!["NaN", "Infinity", "-Infinity", "-0"].includes(v.value as string)) throw bad();
        return Number(v.value);
      case "tensor": {
        const { file, key, dtype, shape } = v;
        if (typeof file !== "string" || typeof key !== "string" || !Array.isArray(shape)) throw bad();
        return tensorFor({ file, key, dtype: checkDType(dtype, `${STATE_FILE} ${where} dtype`), shape }, where);
      }
      default:
        throw bad();
    }
  };
  return walk(json, []);
}

/** `dir` may be absent, or a directory holding nothing but checkpoint files. */
function checkTarget(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return;
  }
  const foreign = isDir ? readdirSync(dir).filter((f) => !FILES.includes(f)) : [];
  if (!isDir || foreign.length > 0) {
    throw new Error(
      `plait: save: ${dir} ${isDir ? `holds files that are not part of a checkpoint (${foreign.slice(0, 5).join(", ")})` : "is not a directory"}; save into a new or checkpoint directory`,
    );
  }
}

/** Moves the complete directory `tmp` to `target`, replacing an older checkpoint there. */
function replaceDir(tmp: string, target: string): void {
  let old: string | undefined;
  try {
    if (statSync(target).isDirectory()) old = siblingName(target, "old");
  } catch {}
  if (old) {
    renameSync(target, old);
    try {
      renameSync(tmp, target);
    } catch (e) {
      renameSync(old, target);
      throw e;
    }
    rmSync(old, { recursive: true, force: true });
  } else renameSync(tmp, target);
  syncDir(dirname(target));
}

const pathStr = (path: Segment[]) =>
  `state${path.map((s) => (typeof s === "number" ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join("")}`;

function describe(v: unknown): string {
  if (v === null || typeof v !== "object") return typeof v === "function" ? "a function" : `${typeof v} ${String(v)}`;
  const name: string = Object.getPrototypeOf(v)?.constructor?.name ?? "null-prototype object";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}
