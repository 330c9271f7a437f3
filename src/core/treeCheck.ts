import type { DType } from "./dtype.ts";
import { type Shape, shapeStr, Tensor } from "./tensor.ts";
import type { Tree } from "./tree.ts";

/**
 * A leaf's dtype and shape without its data: what a checkpoint's header promises before any
 * tensor is allocated. checkTreeLike takes it wherever it takes a tensor on the `actual` side.
 */
export class TensorSpec {
  constructor(
    readonly dtype: DType,
    readonly shape: Shape,
  ) {}
}

/**
 * Checks that `actual` is shaped like the tree `template`: the same keys and array lengths, and
 * at each leaf a tensor (or TensorSpec) of the template leaf's dtype and shape. The first
 * difference, in treeFlatten's order (object keys sorted), is a TypeError that names `op`, the
 * path from `what` (like "params.layers[0].w", as leafPaths spells it), what the template
 * expects there and what came: a leaf of another dtype or shape, something that is not a
 * tensor, a missing key or entry, or one the template does not have.
 */
export function checkTreeLike(op: string, what: string, actual: unknown, template: Tree): void {
  function fail(msg: string): never {
    throw new TypeError(`plait: ${op}: ${msg}`);
  }
  const walk = (a: unknown, t: unknown, path: string): void => {
    if (t instanceof Tensor) {
      if (!(a instanceof Tensor || a instanceof TensorSpec))
        fail(`${path} is ${describe(a)}, expected a tensor ${t.describe()}`);
      if (a.dtype !== t.dtype || shapeStr(a.shape) !== shapeStr(t.shape)) {
        fail(`${path} is ${a.dtype}${shapeStr(a.shape)}, expected ${t.describe()}`);
      }
    } else if (Array.isArray(t)) {
      if (!Array.isArray(a)) fail(`${path} is ${describe(a)}, expected an array of ${t.length}`);
      for (let i = 0; i < Math.min(a.length, t.length); i++) walk(a[i], t[i], `${path}[${i}]`);
      const count = `${path} has ${a.length} entries, expected ${t.length}`;
      if (a.length < t.length) fail(`${path}[${a.length}] is missing (${count})`);
      if (a.length > t.length) fail(`${path}[${t.length}] is not in the template (${count})`);
    } else if (isPlainObject(t)) {
      if (!isPlainObject(a)) fail(`${path} is ${describe(a)}, expected an object with keys ${keysOf(t)}`);
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(t)])].sort()) {
        if (!Object.hasOwn(t, k)) fail(`${path}.${k} is not in the template (expected keys ${keysOf(t)})`);
        if (!Object.hasOwn(a, k)) fail(`${path}.${k} is missing (expected ${expectedAt(t[k])})`);
        walk(a[k], t[k], `${path}.${k}`);
      }
    } else {
      fail(`the template's ${path} is ${describe(t)}, not a tensor, array or plain object`);
    }
  };
  walk(actual, template, what);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;

const keysOf = (o: object) => {
  const keys = Object.keys(o).sort();
  return keys.length > 0 ? keys.join(", ") : "(none)";
};

function expectedAt(t: unknown): string {
  if (t instanceof Tensor) return `a tensor ${t.describe()}`;
  if (Array.isArray(t)) return `an array of ${t.length}`;
  return "an object";
}

function describe(v: unknown): string {
  if (v instanceof Tensor || v instanceof TensorSpec) return `a tensor ${v.dtype}${shapeStr(v.shape)}`;
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v !== "object") return `${typeof v} ${String(v)}`;
  return isPlainObject(v) ? "an object" : `a ${v.constructor?.name ?? "null-prototype object"}`;
}
