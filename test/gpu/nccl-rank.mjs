// @ts-nocheck: a plain script for the GPU machine, run from dist/ without a build step
// One process of test/gpu/nccl.mjs's multi-process cases: RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT from the environment, NCCL_MODE "sum" (allReduce) or "skip" (rank 1 never calls
// it, so rank 0 must time out and abort). Prints one JSON line.
import { NcclComm } from "../../dist/src/comm/nccl.js";
import { Buf } from "./device.mjs";

const rank = Number(process.env.RANK);
const worldSize = Number(process.env.WORLD_SIZE);
const out = (o) => process.stdout.write(`${JSON.stringify({ rank, ...o })}\n`);
try {
  const comm = await NcclComm.bootstrap({ rank, worldSize, device: 0, timeoutMs: 20_000 });
  const x = new Buf([4], "f32", 0).upload(new Float32Array(4).fill(rank + 1));
  if (process.env.NCCL_MODE === "skip" && rank === 1) {
    await new Promise((r) => setTimeout(r, 6000));
    out({ ok: true, skipped: true });
  } else {
    await comm.allReduce(x, "sum", { timeoutMs: process.env.NCCL_MODE === "skip" ? 3000 : 20_000 });
    out({ ok: true, values: Array.from(new Float32Array(x.download().buffer)) });
  }
  await comm.destroy();
  process.exit(0);
} catch (e) {
  out({ ok: false, name: e.name, error: e.message, failedRank: e.failedRank, reason: e.reason });
  process.exit(1);
}
