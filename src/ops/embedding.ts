import { isHalf, toDType } from "../core/castInto.ts";
import { bytesOf } from "../core/dtype.ts";
import { shapeStr, Tensor } from "../core/tensor.ts";
import { checkDTypeIn, checkInput, checkRank } from "./check.ts";
import { as } from "./kernels.ts";
import { tapeFor } from "./tape.ts";

/**
 * Row lookup: out[..., :] = table[ids[...], :] for a table [vocab, dim] and i32 ids of any
 * shape; the result has shape [...ids.shape, dim]. The gradient scatter-adds into the table.
 * A half table (a mixed-precision compute copy) gives f32 rows (widened exactly) and gets an
 * f32 gradient.
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const op = "embedding";
  checkInput(op, "table", table);
  checkInput(op, "ids", ids);
  const stored = checkDTypeIn(op, "table", table, ["f32", "f64", "f16", "bf16"]);
  const dtype = isHalf(stored) ? "f32" : stored;
  checkRank(op, "table", table, 2);
  checkDTypeIn(op, "ids", ids, ["i32"]);
  const [vocab, dim] = table.shape;
  const k = as();
  const bad = k.first_outside_i32(ids.ptr, ids.size, vocab);
  if (bad >= 0) {
    throw new RangeError(
      `plait: ${op}: argument ids has ${ids.data()[bad]} at flat index ${bad}, expected a row of table ${shapeStr(table.shape)} in [0, ${vocab})`,
    );
  }
  const n = ids.size;
  const rows = new Tensor([...ids.shape, dim], stored);
  k.embedding_gather(table.ptr, ids.ptr, rows.ptr, n, dim * bytesOf(stored));
  const out = toDType(rows, dtype);
  if (out !== rows) rows.dispose();
  const tape = tapeFor(table);
  if (tape) {
    const scatter = dtype === "f32" ? k.embedding_scatter_add_f32 : k.embedding_scatter_add_f64;
    tape.record(
      out,
      (g, sink) => {
        const dt = sink.buffer(table);
        if (!dt) return;
        if (!dt.accumulate) dt.out.data().fill(0);
        scatter(g.ptr, ids.ptr, dt.out.ptr, n, dim);
      },
      [ids],
    );
  }
  return out;
}
