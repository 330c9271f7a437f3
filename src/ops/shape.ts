import { bytesOf } from "../core/dtype.ts";
import { checkShape, type Shape, shapeStr, sizeOf, Tensor } from "../core/tensor.ts";
import { checkInput, checkRank } from "./check.ts";
import { as } from "./kernels.ts";
import { tapeFor } from "./tape.ts";

/**
 * The same elements in a new shape (a copy: tensors own their buffers). One entry of `shape`
 * may be -1, inferred from the size.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const op = "reshape";
  checkInput(op, "x", x);
  const target = resolveShape(op, x, shape);
  const out = new Tensor(target, x.dtype);
  as().copy_bytes(out.ptr, x.ptr, x.byteLength);
  const tape = tapeFor(x);
  if (tape) {
    tape.record(out, (g, sink) => sink.assign(x, (dx) => as().copy_bytes(dx.ptr, g.ptr, g.byteLength)), []);
  }
  return out;
}

/** The transpose of a 2-D tensor: out[j, i] = x[i, j]. */
export function transpose(x: Tensor): Tensor {
  const op = "transpose";
  checkInput(op, "x", x);
  checkRank(op, "x", x, 2);
  const [rows, cols] = x.shape;
  const out = new Tensor([cols, rows], x.dtype);
  const fn = transposeKernel(op, x);
  fn(x.ptr, out.ptr, rows, cols);
  const tape = tapeFor(x);
  if (tape) tape.record(out, (g, sink) => sink.assign(x, (dx) => fn(g.ptr, dx.ptr, cols, rows)), []);
  return out;
}

function transposeKernel(op: string, x: Tensor): (x: number, out: number, rows: number, cols: number) => void {
  const bytes = bytesOf(x.dtype);
  if (bytes === 4) return as().transpose_32;
  if (bytes === 8) return as().transpose_64;
  throw new TypeError(`plait: ${op}: argument x has dtype ${x.dtype}, expected a 4- or 8-byte dtype (f32, i32, f64)`);
}

function resolveShape(op: string, x: Tensor, shape: readonly number[]): Shape {
  const holes = Array.isArray(shape) ? shape.filter((d) => d === -1).length : 0;
  if (holes > 1) throw new RangeError(`plait: ${op}: argument shape [${shape.join(", ")}] has more than one -1`);
  const known = sizeOf(checkShape(holes ? shape.filter((d) => d !== -1) : shape, `${op}: argument shape`));
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (!resolved.every(Number.isInteger) || sizeOf(resolved) !== x.size) {
    throw new RangeError(
      `plait: ${op}: argument shape [${shape.join(", ")}] does not fit the ${x.size} elements of x ${shapeStr(x.shape)}`,
    );
  }
  return Object.freeze(resolved);
}
