// `npm run demo -- --model gpt` end to end (the built dist/), one epoch each: single device,
// DDP on 2 ranks, and FSDP with bf16-mixed on 2 ranks. One correct epoch reaches ~2.3 nats/char
// on the held-out names (uniform over 28 tokens is ln 28 ≈ 3.33; a bigram model ~2.45).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

function demo(...args: string[]) {
  const out = mkdtempSync(join(tmpdir(), "plait-demo-gpt-"));
  const stdout = execFileSync(process.execPath, [main, "demo", "--model", "gpt", "--json", "--out", out, ...args], {
    encoding: "utf8",
  });
  return { summary: JSON.parse(stdout), out };
}

describe("npm run demo -- --model gpt", () => {
  it("trains the transformer in one epoch below 2.45 nats/char and samples ten names", () => {
    const { summary, out } = demo("--epochs", "1");
    expect(summary).toMatchObject({ model: "gpt", epochs: 1, precision: "32-true" });
    expect(summary.valLoss).toBeLessThan(2.45);
    expect(summary.names).toHaveLength(10);
    for (const name of summary.names) expect(name).toMatch(/^[a-z-]*$/);
    const [run] = readdirSync(out);
    const history = JSON.parse(readFileSync(join(out, run, "history.json"), "utf8"));
    expect(history.history[0].metrics.valLoss).toBe(summary.valLoss);
  }, 600_000);

  for (const [strategy, precision] of [
    ["ddp", "32-true"],
    ["fsdp", "bf16-mixed"],
  ]) {
    it(`trains on 2 ranks under ${strategy} with ${precision}`, () => {
      const { summary } = demo("--epochs", "1", "--devices", "2", "--strategy", strategy, "--precision", precision);
      expect(summary).toMatchObject({ model: "gpt", devices: 2, strategy, precision, skippedSteps: 0 });
      expect(summary.valLoss).toBeLessThan(2.45);
    }, 600_000);
  }

  it("refuses --batch-norm, which is the CNN's", () => {
    expect(() =>
      execFileSync(process.execPath, [main, "demo", "--model", "gpt", "--batch-norm"], { stdio: "pipe" }),
    ).toThrow(/--batch-norm is for --model cnn; got --model gpt/);
  });
});
