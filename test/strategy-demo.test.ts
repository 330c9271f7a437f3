import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// `plait demo --devices N --strategy S` end to end, as a user runs it: the built CLI (dist/) in its
// own process. `npx tsc -p tsconfig.build.json` first.

const CLI = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "plait-demo-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function demo(...flags: string[]) {
  const r = spawnSync(process.execPath, [CLI, "demo", "--out", out, ...flags], { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("plait demo with several devices", () => {
  it("trains as the single-device demo does on the same global batches, and writes the same outputs", () => {
    const single = demo("--epochs", "1", "--json");
    const ddp = demo("--epochs", "1", "--json", "--devices", "2", "--strategy", "ddp");
    expect(ddp.stderr).toBe("");
    expect(ddp.status).toBe(0);
    const a = JSON.parse(single.stdout);
    const b = JSON.parse(ddp.stdout);
    expect(b).toMatchObject({ devices: 2, strategy: "ddp", epochs: 1, batchSize: 64, skippedSteps: 0 });
    // the same updates up to summation order: the accuracy on 2,000 test digits and the loss agree
    expect(Math.abs(b.testAccuracy - a.testAccuracy)).toBeLessThanOrEqual(0.002);
    expect(Math.abs(b.finalLoss - a.finalLoss)).toBeLessThan(1e-3);
    const runs = readdirSync(out).map((d) => join(out, d));
    expect(runs.filter((d) => existsSync(join(d, "history.json")) && existsSync(join(d, "mnist.svg"))).length).toBe(2);
    rmSync(out, { recursive: true, force: true });
  });

  it("zero1, zero2, zero3 and fsdp train to DDP's very params (the same loss and accuracy), dp to nearly", () => {
    const ddp = JSON.parse(demo("--epochs", "1", "--json", "--devices", "2").stdout);
    for (const strategy of ["zero1", "zero2", "zero3", "fsdp", "dp"]) {
      const r = demo("--epochs", "1", "--json", "--devices", "2", "--strategy", strategy);
      expect(r.status).toBe(0);
      const got = JSON.parse(r.stdout);
      expect(got.strategy).toBe(strategy);
      if (strategy === "dp") {
        // dp splits each global batch into halves, where DDP's sampler interleaves the ranks' rows:
        // the same mean gradient, summed in another order
        expect(Math.abs(got.finalLoss - ddp.finalLoss)).toBeLessThan(1e-6);
        expect(Math.abs(got.testAccuracy - ddp.testAccuracy)).toBeLessThanOrEqual(0.001);
      } else expect(got).toMatchObject({ testAccuracy: ddp.testAccuracy, finalLoss: ddp.finalLoss });
    }
  });

  it("prints progress and the accuracy without --json", () => {
    const r = demo("--epochs", "1", "--devices", "2", "--precision", "bf16-mixed");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("2 ranks (ddp), global batch 64 (32 per rank), 1 epochs, bf16-mixed");
    expect(r.stderr).toMatch(/test accuracy \d+\.\d\d%/);
  });

  for (const [flags, message] of <[string[], string][]>[
    [["--devices", "0"], 'flag --devices must be an integer from 1 to 256 or "auto"; got "0"'],
    [["--devices", "1.5"], 'flag --devices must be an integer from 1 to 256 or "auto"; got "1.5"'],
    [["--devices", "257"], 'flag --devices must be an integer from 1 to 256 or "auto"; got "257"'],
    [
      ["--strategy", "ddp3"],
      'flag --strategy must be one of ddp, ddp2, horovod, dp, zero1, zero2, zero3, fsdp; got "ddp3"',
    ],
    [
      ["--devices", "2", "--batch-size", "63"],
      "flag --batch-size must be a multiple of --devices (each rank takes batch/ranks samples of every global batch); got 63 and 2",
    ],
  ]) {
    it(`refuses ${flags.join(" ")}`, () => {
      const r = demo("--epochs", "1", ...flags);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`plait demo: ${message}\n`);
    });
  }
});
