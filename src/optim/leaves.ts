import { type DType, isFloat } from "../core/dtype.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { leafPaths, type Tree, treeFlatten } from "../core/tree.ts";

/** The leaves of a params tree and the tree itself (kept to name paths in errors). */
export interface ParamLeaves {
  readonly tree: Tree;
  readonly leaves: Tensor[];
  readonly key: string;
}

const isPlainObject = (t: unknown): t is Record<string, Tree> =>
  t !== null && typeof t === "object" && Object.getPrototypeOf(t) === Object.prototype;

function kindOf(t: unknown): string {
  if (t instanceof Tensor) return "a tensor";
  if (Array.isArray(t)) return `an array of ${t.length}`;
  if (isPlainObject(t)) return `an object with keys [${Object.keys(t).sort().join(", ")}]`;
  return String(t);
}

/** The first path (relative to the roots) where two trees differ in structure. */
function firstDifference(a: unknown, b: unknown, path = ""): { path: string; a: unknown; b: unknown } | undefined {
  if (a instanceof Tensor && b instanceof Tensor) return undefined;
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b) && kindOf(a) === kindOf(b)) {
    for (const k of Object.keys(a).sort()) {
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return { path, a, b };
}

/** The leaves of `params`, each checked to be a float tensor (f64, f32, f16 or bf16). */
export function paramLeaves(op: string, params: Tree): ParamLeaves {
  const { leaves, def } = treeFlatten(params);
  leaves.forEach((leaf, i) => {
    if (!isFloat(leaf.dtype)) {
      const path = leafPaths(params, "params")[i];
      throw new TypeError(
        `plait: ${op}: ${path} is ${leaf.describe()}; optimizers update f64, f32, f16 or bf16 tensors`,
      );
    }
  });
  return { tree: params, leaves, key: def.key };
}

/**
 * The leaves of `other` (named `name` in errors: "grads", "state.slots.m"), checked to match
 * `params` leaf by leaf in structure and shape, and to have dtype `dtypeOf(param)` (default:
 * the param's own).
 */
export function matchingLeaves(
  op: string,
  name: string,
  other: Tree,
  params: ParamLeaves,
  dtypeOf: (d: DType) => DType = (d) => d,
): Tensor[] {
  const { leaves, def } = treeFlatten(other);
  if (def.key !== params.key) {
    const d = firstDifference(params.tree, other);
    const where = d
      ? `${name}${d.path} is ${kindOf(d.b)}, params${d.path} is ${kindOf(d.a)}`
      : `${name} has structure ${def.key}, params has ${params.key}`;
    throw new TypeError(`plait: ${op}: ${name} does not have the structure of params: ${where}`);
  }
  leaves.forEach((leaf, i) => {
    const p = params.leaves[i];
    const dtype = dtypeOf(p.dtype);
    if (leaf.dtype !== dtype || leaf.ndim !== p.ndim || leaf.shape.some((d, j) => d !== p.shape[j])) {
      const path = leafPaths(params.tree, "")[i];
      const like = dtype === p.dtype ? "like" : `for ${p.dtype}`;
      throw new TypeError(
        `plait: ${op}: ${name}${path} is ${leaf.describe()}, expected ${dtype}${shapeStr(p.shape)} ${like} params${path}`,
      );
    }
  });
  return leaves;
}
