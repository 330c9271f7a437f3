// `npm run demo -- --model cnn` end to end (the built dist/), one epoch: a broken convolution,
// pooling or gradient cannot reach the floor (chance is 10%; one correct epoch gives ~95%).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

function demo(...args: string[]) {
  const out = mkdtempSync(join(tmpdir(), "plait-demo-cnn-"));
  const stdout = execFileSync(process.execPath, [main, "demo", "--model", "cnn", "--json", "--out", out, ...args], {
    encoding: "utf8",
  });
  return { summary: JSON.parse(stdout), out };
}

describe("npm run demo -- --model cnn", () => {
  it("trains the CNN past the accuracy floor in one epoch and records the model", () => {
    const { summary, out } = demo("--epochs", "1");
    expect(summary.model).toBe("cnn");
    expect(summary.epochs).toBe(1);
    expect(summary.testAccuracy).toBeGreaterThan(0.9);
    const [run] = readdirSync(out);
    const history = JSON.parse(readFileSync(join(out, run, "history.json"), "utf8"));
    expect(history.summary.model).toBe("cnn");
  }, 600_000);

  it("trains on 2 ranks under FSDP with bf16-mixed", () => {
    const { summary } = demo("--epochs", "1", "--devices", "2", "--strategy", "fsdp", "--precision", "bf16-mixed");
    expect(summary).toMatchObject({ model: "cnn", devices: 2, strategy: "fsdp", precision: "bf16-mixed" });
    expect(summary.testAccuracy).toBeGreaterThan(0.9);
  }, 600_000);

  it("trains with --batch-norm on 2 ranks (DDP): rank 0 evaluates with its running statistics", () => {
    const { summary } = demo("--epochs", "1", "--batch-norm", "--devices", "2", "--strategy", "ddp");
    expect(summary).toMatchObject({ model: "cnn", devices: 2, strategy: "ddp" });
    expect(summary.testAccuracy).toBeGreaterThan(0.85);
  }, 600_000);

  it("refuses --batch-norm for the MLP", () => {
    expect(() => execFileSync(process.execPath, [main, "demo", "--batch-norm"], { stdio: "pipe" })).toThrow(
      /--batch-norm is for --model cnn; got --model mlp/,
    );
  });

  it("rejects an unknown model naming the choices", () => {
    expect(() => execFileSync(process.execPath, [main, "demo", "--model", "resnet"], { stdio: "pipe" })).toThrow(
      /--model must be one of .*cnn.*got "resnet"/,
    );
  });
});
