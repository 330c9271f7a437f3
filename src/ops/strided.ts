import { type Shape, shapeStr, sizeOf, Tensor } from "../core/tensor.ts";

// Index arithmetic shared by the shape-changing ops (permute, slice, concat, stack, gather,
// where) and numpy broadcasting: strided copies over row-major tensors as plain loops. These
// ops move elements (no arithmetic) or sum gradients in float64, so any dtype's typed array
// (f16/bf16 as raw 16-bit patterns) works.

/** A writable typed array (Float32Array, Float64Array, Uint16Array, Int32Array, Uint8Array). */
export type Elements = { [i: number]: number; readonly length: number };

/** Row-major strides of `shape`, in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * For every index i of `shape`: dst[dOff + i·dStrides] = src[sOff + i·sStrides], or += when
 * `accumulate`. A zero stride repeats (src: broadcast) or sums into (dst: reduce) one element.
 */
export function stridedCopy(
  shape: Shape,
  src: Elements,
  sOff: number,
  sStrides: readonly number[],
  dst: Elements,
  dOff: number,
  dStrides: readonly number[],
  accumulate = false,
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  [shape, sStrides, dStrides] = coalesce(shape, sStrides, dStrides);
  const nd = shape.length;
  if (nd === 0) {
    dst[dOff] = accumulate ? dst[dOff] + src[sOff] : src[sOff];
    return;
  }
  const last = shape[nd - 1];
  const ss = sStrides[nd - 1];
  const ds = dStrides[nd - 1];
  if (!accumulate && sameKind(src, dst)) {
    // Same element type: copy bit patterns through one of four views (Uint8, Uint16, Int32,
    // Float64), which keeps the element accesses below polymorphic instead of megamorphic.
    src = raw(src);
    dst = raw(dst);
  }
  // Long contiguous runs on both sides: a native copy per run (a subarray costs ~1 µs).
  const runs = !accumulate && ss === 1 && ds === 1 && last >= 256 && sameKind(src, dst);
  const from = src as Float64Array;
  const to = dst as Float64Array;
  const idx = new Array<number>(nd).fill(0);
  let s = sOff;
  let d = dOff;
  for (let o = n / last; o > 0; o--) {
    if (runs) to.set(from.subarray(s, s + last), d);
    else if (accumulate) for (let j = 0; j < last; j++) dst[d + j * ds] += src[s + j * ss];
    else for (let j = 0; j < last; j++) dst[d + j * ds] = src[s + j * ss];
    for (let ax = nd - 2; ax >= 0; ax--) {
      s += sStrides[ax];
      d += dStrides[ax];
      if (++idx[ax] < shape[ax]) break;
      s -= sStrides[ax] * shape[ax];
      d -= dStrides[ax] * shape[ax];
      idx[ax] = 0;
    }
  }
}

const sameKind = (a: Elements, b: Elements) => a.constructor === b.constructor && ArrayBuffer.isView(a);

/** The same memory as a Uint8Array, Uint16Array, Int32Array (any 4-byte type) or Float64Array. */
function raw(a: Elements): Elements {
  if (a instanceof Float32Array) return new Int32Array(a.buffer, a.byteOffset, a.length);
  return a;
}

/**
 * The same walk over fewer axes: size-1 axes dropped, and each axis merged into the next when
 * both sides step through them as one (stride = next stride × next size), so runs get longer.
 */
function coalesce(shape: Shape, a: readonly number[], b: readonly number[]): [number[], number[], number[]] {
  const dims: number[] = [];
  const as: number[] = [];
  const bs: number[] = [];
  for (let ax = 0; ax < shape.length; ax++) {
    if (shape[ax] === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && as[k] === a[ax] * shape[ax] && bs[k] === b[ax] * shape[ax]) {
      dims[k] *= shape[ax];
      as[k] = a[ax];
      bs[k] = b[ax];
    } else {
      dims.push(shape[ax]);
      as.push(a[ax]);
      bs.push(b[ax]);
    }
  }
  return [dims, as, bs];
}

/** `axis` (negative counts from the end) as an index in [0, ndim), or an error naming the op and x's shape. */
export function normAxis(op: string, axis: unknown, shape: Shape, arg = "axis"): number {
  const nd = shape.length;
  if (typeof axis !== "number" || !Number.isInteger(axis) || axis < -nd || axis >= nd) {
    const range = nd === 0 ? "none: x has no axes" : `an integer in [${-nd}, ${nd - 1}]`;
    throw new RangeError(
      `plait: ${op}: ${arg} ${String(axis)} is out of range for shape ${shapeStr(shape)} (expected ${range})`,
    );
  }
  return axis < 0 ? axis + nd : axis;
}

/**
 * The numpy broadcast of `shapes` (aligned at the last axis; each axis equal or 1), or an
 * error naming the op, the shapes and the rule.
 */
export function broadcastShapes(op: string, shapes: readonly Shape[], names: readonly string[]): Shape {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (let ax = 1; ax <= nd; ax++) {
    for (const s of shapes) {
      const d = s.length - ax >= 0 ? s[s.length - ax] : 1;
      const o = out[nd - ax];
      if (d === o || d === 1) continue;
      if (o === 1) out[nd - ax] = d;
      else {
        const list = shapes.map((t, i) => `${names[i]} ${shapeStr(t)}`).join(", ");
        throw new RangeError(
          `plait: ${op}: shapes do not broadcast: ${list} (axis ${-ax} has ${o} and ${d}; numpy rule: aligned at the last axis, each axis equal or 1)`,
        );
      }
    }
  }
  return Object.freeze(out);
}

/** Strides that read a tensor of `shape` as if broadcast to `to` (0 on its size-1 and missing axes). */
export function broadcastStrides(shape: Shape, to: Shape): number[] {
  const own = stridesOf(shape);
  const pad = to.length - shape.length;
  return to.map((_d, ax) => (ax < pad || shape[ax - pad] === 1 ? 0 : own[ax - pad]));
}

/** A new tensor holding x broadcast to `shape` (x itself when it already has that shape). */
export function expandTo(x: Tensor, shape: Shape): Tensor {
  if (sameDims(x.shape, shape)) return x;
  const out = new Tensor(shape, x.dtype);
  stridedCopy(shape, x.data(), 0, broadcastStrides(x.shape, shape), out.data(), 0, stridesOf(shape));
  return out;
}

/**
 * The reverse of broadcasting: `full` (of the broadcast shape) summed over the axes that
 * broadcasting added or stretched, written into `out` (of the original shape), in float64.
 */
export function sumTo(full: Tensor, out: Tensor): void {
  const acc = new Float64Array(out.size);
  stridedCopy(full.shape, full.data(), 0, stridesOf(full.shape), acc, 0, broadcastStrides(out.shape, full.shape), true);
  (out.data() as Float64Array).set(acc);
}

export function sameDims(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
