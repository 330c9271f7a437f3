// The main job end to end, as `npm run demo` runs it (the built dist/), with fewer epochs: a
// broken gradient or optimizer cannot reach the accuracy floor (chance is 10%; one correct
// epoch already gives ~89%).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

function demo(...args: string[]) {
  const out = mkdtempSync(join(tmpdir(), "plait-demo-"));
  const stdout = execFileSync(process.execPath, [main, "demo", "--json", "--out", out, ...args], { encoding: "utf8" });
  return { summary: JSON.parse(stdout), out };
}

describe("npm run demo", () => {
  it("trains the MNIST MLP past the accuracy floor, prints one JSON object and writes the chart", () => {
    const { summary, out } = demo("--epochs", "2");
    for (const key of ["testAccuracy", "epochs", "batchSize", "samplesPerSec", "finalLoss"])
      expect(summary).toHaveProperty(key);
    expect(summary.epochs).toBe(2);
    expect(summary.batchSize).toBe(64);
    expect(summary.testAccuracy).toBeGreaterThan(0.85);
    expect(summary.finalLoss).toBeLessThan(0.5);
    expect(summary.samplesPerSec).toBeGreaterThan(0);
    const [run] = readdirSync(out);
    expect(existsSync(join(out, run, "mnist.svg"))).toBe(true);
  });

  it("trains under bf16-mixed too", () => {
    expect(demo("--epochs", "2", "--precision", "bf16-mixed").summary.testAccuracy).toBeGreaterThan(0.85);
  });

  it("rejects a bad flag with a message naming it", () => {
    expect(() => execFileSync(process.execPath, [main, "demo", "--precision", "fp8"], { stdio: "pipe" })).toThrow(
      /--precision must be one of .*got "fp8"/,
    );
  });
});
