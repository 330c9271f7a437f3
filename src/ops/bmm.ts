import { isHalf, toDType } from "../core/castInto.ts";
import { type Shape, shapeStr, sizeOf, Tensor } from "../core/tensor.ts";
import { addInto } from "./accumulate.ts";
import { checkDTypeIn, checkInput } from "./check.ts";
import { as } from "./kernels.ts";
import { matmul, product } from "./linear.ts";
import { reshape } from "./shape.ts";
import { sameDims } from "./strided.ts";
import { tapeFor } from "./tape.ts";

export interface BmmOptions {
  /** Use each matrix of a transposed (a stored [..., k, m]). */
  transA?: boolean;
  /** Use each matrix of b transposed (b stored [..., n, k]): q · kᵀ without a permute. */
  transB?: boolean;
}

/**
 * Batched matrix product: out[i] = op(a[i]) · op(b[i]) for a [...batch, m, k] and
 * b [...batch, k, n] (op(x) = xᵀ where asked), giving [...batch, m, n]. The batch axes of a
 * and b are equal, or one operand is 2-D and multiplies every matrix of the other (a weight
 * shared over the batch). Each product runs on the GEMM (the system BLAS when in use), one
 * call per batch matrix; a 2-D b under an untransposed a is one GEMM over a's rows.
 *
 * Dtypes as for matmul: f32 × f32 and f64 × f64; with an f16/bf16 operand the other is that
 * dtype or f32 (rounded to it), the products accumulate in f32 and the result is f32. The
 * gradients are the per-matrix ones of matmul (a shared 2-D operand gets their sum).
 */
export function bmm(a: Tensor, b: Tensor, opts: BmmOptions = {}): Tensor {
  const op = "bmm";
  checkInput(op, "a", a);
  checkInput(op, "b", b);
  const transA = opts.transA === true;
  const transB = opts.transB === true;
  const half = checkPair(a, b);
  const plan = planBmm(a, b, transA, transB);
  const { batch, m, n } = plan;
  if (b.ndim === 2 && a.ndim > 2 && !transA) {
    // [...batch, m, k] · [k, n] is one product of [batch·m, k] rows: differentiable by composition.
    const rows = reshape(a, [sizeOf(batch) * a.shape[a.ndim - 2], a.shape[a.ndim - 1]]);
    const y = matmul(rows, b, { transB });
    const out = reshape(y, [...batch, m, n]);
    if (!tapeFor(a, b)) {
      rows.dispose();
      y.dispose();
    }
    return out;
  }
  // The operands the products run on: half copies when the product is in half.
  const ah = half === undefined ? a : toDType(a, half);
  const bh = half === undefined ? b : toDType(b, half);
  const made = [ah, bh].filter((t) => t !== a && t !== b);
  const outDType = half === undefined ? a.dtype : "f32";
  const out = new Tensor([...batch, m, n], outDType);
  const count = sizeOf(batch);
  for (let i = 0; i < count; i++) {
    const ai = matrix(ah, i);
    const bi = matrix(bh, i);
    const ci = product(ai, bi, { transA, transB });
    writeMatrix(out, i, ci);
    for (const t of [ai, bi, ci]) if (t !== ah && t !== bh) t.dispose();
  }
  const tape = tapeFor(a, b);
  if (!tape) {
    for (const t of made) t.dispose();
    return out;
  }
  tape.record(
    out,
    (g, sink) => {
      const gh = half === undefined ? g : toDType(g, half);
      try {
        // dA_i = G_i · op(B_i)ᵀ (stored transposed when transA); dB_i = op(A_i)ᵀ · G_i (likewise).
        sink.assign(a, (da) =>
          perBatch(da, count, (i) => {
            const gi = matrix(gh, i);
            const bi = matrix(bh, i);
            const r = !transA
              ? product(gi, bi, { transB: !transB })
              : product(bi, gi, { transA: transB, transB: true });
            if (gi !== gh) gi.dispose();
            if (bi !== bh) bi.dispose();
            return r;
          }),
        );
        sink.assign(b, (db) =>
          perBatch(db, count, (i) => {
            const gi = matrix(gh, i);
            const ai = matrix(ah, i);
            const r = !transB
              ? product(ai, gi, { transA: !transA })
              : product(gi, ai, { transA: true, transB: transA });
            if (gi !== gh) gi.dispose();
            if (ai !== ah) ai.dispose();
            return r;
          }),
        );
      } finally {
        if (gh !== g) gh.dispose();
      }
    },
    [ah, bh],
    made,
  );
  return out;
}

interface BmmPlan {
  batch: Shape;
  m: number;
  n: number;
}

/** The batch axes and the product's m and n, or an error naming both shapes and the rule. */
function planBmm(a: Tensor, b: Tensor, transA: boolean, transB: boolean): BmmPlan {
  const shapes = `a ${shapeStr(a.shape)}${transA ? " (transA)" : ""} and b ${shapeStr(b.shape)}${transB ? " (transB)" : ""}`;
  if (a.ndim < 2 || b.ndim < 2) {
    throw new RangeError(`plait: bmm: ${shapes}: each operand needs at least 2 axes ([...batch, rows, cols])`);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  if (a.ndim > 2 && b.ndim > 2 && !sameDims(batchA, batchB)) {
    throw new RangeError(
      `plait: bmm: ${shapes}: batch axes ${shapeStr(batchA)} and ${shapeStr(batchB)} differ; they must be equal, or one operand 2-D (shared over the batch)`,
    );
  }
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const [m, k] = transA ? [ca, ra] : [ra, ca];
  const [kb, n] = transB ? [cb, rb] : [rb, cb];
  if (k !== kb) {
    throw new RangeError(
      `plait: bmm: ${shapes}: inner dimensions differ (a gives k = ${k}, b gives k = ${kb}); rule: [..., m, k] × [..., k, n]`,
    );
  }
  return { batch: a.ndim > 2 ? batchA : batchB, m, n };
}

/** The half dtype the products run in, if any; an error for a pair the GEMM cannot multiply. */
function checkPair(a: Tensor, b: Tensor): "f16" | "bf16" | undefined {
  checkDTypeIn("bmm", "a", a, ["f32", "f64", "f16", "bf16"]);
  checkDTypeIn("bmm", "b", b, ["f32", "f64", "f16", "bf16"]);
  const half = isHalf(a.dtype) ? a.dtype : isHalf(b.dtype) ? b.dtype : undefined;
  const ok =
    half === undefined ? a.dtype === b.dtype : [half, "f32"].includes(a.dtype) && [half, "f32"].includes(b.dtype);
  if (!ok) {
    throw new TypeError(
      `plait: bmm: arguments a (${a.dtype}) and b (${b.dtype}) are not a supported pair; supported: f32×f32, f64×f64, and f16 or bf16 with itself or f32`,
    );
  }
  return half;
}

/** Matrix i of x (a copy), or x itself when x is 2-D (shared over the batch). */
function matrix(x: Tensor, i: number): Tensor {
  if (x.ndim === 2) return x;
  const [r, c] = x.shape.slice(-2);
  const t = new Tensor([r, c], x.dtype);
  as().copy_bytes(t.ptr, x.ptr + i * t.byteLength, t.byteLength);
  return t;
}

function writeMatrix(out: Tensor, i: number, m: Tensor): void {
  as().copy_bytes(out.ptr + i * m.byteLength, m.ptr, m.byteLength);
}

/** Fills gradient `d` from per-batch products: copied into d's matrices, or summed when d is 2-D (shared). */
function perBatch(d: Tensor, count: number, make: (i: number) => Tensor): void {
  if (d.ndim > 2) {
    for (let i = 0; i < count; i++) {
      const r = make(i);
      writeMatrix(d, i, r);
      r.dispose();
    }
    return;
  }
  new Uint8Array(d.data().buffer, d.ptr, d.byteLength).fill(0);
  for (let i = 0; i < count; i++) {
    const r = make(i);
    addInto(d, r);
    r.dispose();
  }
}
