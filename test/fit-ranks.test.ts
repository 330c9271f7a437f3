import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { spawn } from "../src/launch/index.ts";

// fit over 2 shm ranks (worker threads loading plait from dist/): the logged metrics and the loss
// are the float64 means (or sums) of what the ranks saw, the same on both, and rank 0 alone writes.

const FIXTURE = new URL("./fixtures/fit-ranks.mjs", import.meta.url);
interface Result {
  history: { epoch: number; loss: number; samples: number; seconds: number; metrics: Record<string, number> }[];
  losses: number[];
  logged: { a: number; b: number }[];
}
const run = (kind: string, dir = mkdtempSync(join(tmpdir(), "plait-fit-ranks-"))) =>
  spawn<Result>(FIXTURE, "run", { devices: 2, args: { kind, dir }, timeoutMs: 60_000 });

describe("fit over 2 ranks", () => {
  it("logs means and sums equal to the float64 mean and sum of the ranks' values; the loss is the ranks' mean", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plait-fit-ranks-"));
    const [r0, r1] = await run("ddp", dir);
    const untimed = (r: Result) => r.history.map(({ seconds: _, ...h }) => h);
    expect(untimed(r1)).toEqual(untimed(r0));
    expect(r0.history).toHaveLength(2);
    for (const [e, h] of r0.history.entries()) {
      const [x0, x1] = [r0.logged[e], r1.logged[e]];
      const local = (x: number) => (x + x * x) / 2; // the mean of this rank's two calls
      expect(h.metrics.a).toBe((local(x0.a) + local(x1.a)) / 2);
      expect(h.metrics.b).toBe(x0.b + x1.b);
      expect(h.metrics.a).not.toBe(local(x0.a));
      // 16 samples per rank in 4 batches of 4: each step's loss is the mean of the ranks' losses
      let sum = 0;
      for (let i = 4 * e; i < 4 * e + 4; i++) sum += ((r0.losses[i] + r1.losses[i]) / 2) * 4;
      expect(h.loss).toBeCloseTo(sum / 16, 14);
      expect(h.loss).not.toBeCloseTo(r0.losses.slice(4 * e, 4 * e + 4).reduce((s, l) => s + l, 0) / 4, 6);
    }
    // each rank saved its own state (the best epoch by "a", which grows) into its own folder
    expect(readdirSync(join(dir, "ckpt")).sort()).toEqual(["rank0", "rank1"]);
    for (const r of ["rank0", "rank1"]) expect(readdirSync(join(dir, "ckpt", r))).toEqual(["epoch=2-step=8"]);
    const csv = readFileSync(join(dir, "metrics.csv"), "utf8").trimEnd().split("\n");
    expect(csv).toEqual([
      "epoch,step,loss,a,b",
      ...r0.history.map((h, i) => [h.epoch, 4 * (i + 1), h.loss, h.metrics.a, h.metrics.b].join(",")),
    ]);
  });

  it("ranks that log different names fail together, naming the names", async () => {
    await expect(run("mismatch")).rejects.toThrow(
      /plait: fit: the ranks logged different metrics this epoch \(rank [01]: \[a, b(, c)?\]\); every rank must log the same names with the same reduce, in the same order/,
    );
  });

  it("a rank without its comm is refused, naming the fix", async () => {
    await expect(run("nocomm")).rejects.toThrow(
      /plait: fit: this thread is rank [01] of 2; pass comm \(the rank's ctx.comm, as given to train\) so the loss and metrics are reduced over the ranks/,
    );
  });

  it("under withDP rank 0 drives the loop and the other rank serves it", async () => {
    const [r0, r1] = await run("dp");
    expect(r0.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(r1.history).toEqual([]);
    expect(r0.history[1].metrics.a).toBe((r0.logged[1].a + r0.logged[1].a ** 2) / 2);
  });
});
