import type { DType } from "../core/dtype.ts";
import { checkOptions } from "../core/options.ts";
import { checkTensor, Tensor, typeName } from "../core/tensor.ts";
import { type Tree, treeFlatten } from "../core/tree.ts";
import { type CollectiveOptions, REDUCE_OPS, type ReduceOp } from "./types.ts";

// Argument checks shared by every backend, so that a world-size-1 run rejects what a
// distributed one would.

const REDUCIBLE: readonly DType[] = ["f64", "f32", "f16", "bf16", "i32"];

export function checkOp(name: string, op: unknown): ReduceOp {
  if (!(REDUCE_OPS as readonly unknown[]).includes(op)) {
    throw new TypeError(
      `plait: ${name}: argument op must be one of ${REDUCE_OPS.map((o) => `"${o}"`).join(", ")}, got ${JSON.stringify(op)}`,
    );
  }
  return op as ReduceOp;
}

/** The leaves of a tensor or tree (each checked), in treeFlatten order. */
export function leavesOf(name: string, x: unknown): Tensor[] {
  return flattenForComm(name, x).leaves;
}

/**
 * leavesOf and, from the same flatten, the tree's structure key (treeFlatten's def.key; "" for
 * a lone Tensor), which ranks hash to agree that they called with the same tree.
 */
export function flattenForComm(name: string, x: unknown): { leaves: Tensor[]; key: string } {
  if (x instanceof Tensor) return { leaves: [checkTensor(name, "x", x)], key: "" };
  let flat: ReturnType<typeof treeFlatten>;
  try {
    flat = treeFlatten(x as Tree);
  } catch (e) {
    throw new TypeError(`plait: ${name}: argument x must be a Tensor or a tree of Tensors: ${(e as Error).message}`);
  }
  for (const [i, t] of flat.leaves.entries()) checkTensor(name, `x leaf ${i}`, t);
  return { leaves: flat.leaves, key: flat.def.key };
}

/** A 32-bit FNV-1a hash of `key`, never 0 (a call descriptor's 0 means no tree). */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h | 0 || 1;
}

export function checkReducible(name: string, x: Tensor, op: ReduceOp, what = "x"): void {
  if (!REDUCIBLE.includes(x.dtype)) {
    throw new TypeError(
      `plait: ${name}: argument ${what} has dtype ${x.dtype}, expected one of ${REDUCIBLE.join(", ")}`,
    );
  }
  if (op === "avg" && x.dtype === "i32") {
    throw new TypeError(`plait: ${name}: op "avg" needs a float dtype, argument ${what} is i32 (use "sum")`);
  }
}

export function checkRoot(name: string, root: unknown, worldSize: number): number {
  if (typeof root !== "number" || !Number.isInteger(root) || root < 0 || root >= worldSize) {
    throw new RangeError(
      `plait: ${name}: argument root must be an integer rank in [0, ${worldSize - 1}], got ${JSON.stringify(root)}`,
    );
  }
  return root;
}

const COLLECTIVE_OPTIONS = ["timeoutMs", "signal"] as const;

/**
 * Checks a collective's options (`timeoutMs`, `signal`; any other key is refused by name) and
 * returns the timeout that applies: the call's, else `defaultTimeoutMs`.
 */
export function checkTimeout(name: string, opts: CollectiveOptions | undefined, defaultTimeoutMs: number): number {
  if (opts === undefined) return defaultTimeoutMs;
  const { timeoutMs, signal } = checkOptions(name, opts, COLLECTIVE_OPTIONS);
  if (signal !== undefined && !(typeof signal === "object" && signal !== null && "aborted" in signal)) {
    throw new TypeError(`plait: ${name}: option signal must be an AbortSignal, got ${typeName(signal)}`);
  }
  return timeoutMs === undefined ? defaultTimeoutMs : checkTimeoutMs(name, timeoutMs);
}

/** A timeout in ms: a number in (0, 2^31) (setTimeout's range). */
export function checkTimeoutMs(name: string, timeoutMs: unknown): number {
  if (!(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new RangeError(
      `plait: ${name}: option timeoutMs must be a number of milliseconds in (0, 2^31), got ${JSON.stringify(timeoutMs)}`,
    );
  }
  return timeoutMs;
}
