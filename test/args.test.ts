import { describe, expect, it } from "vitest";
import { parseFlags } from "../src/cli/args.ts";

const spec = {
  epochs: { type: "int", default: 5, min: 1, help: "epochs" },
  lr: { type: "number", default: 0.1, help: "learning rate" },
  precision: { type: "string", choices: ["32-true", "bf16-mixed"], help: "precision" },
  json: { type: "boolean", help: "json" },
} as const;

describe("parseFlags", () => {
  it("reads both flag forms and keeps defaults", () => {
    expect(parseFlags(["--epochs", "3", "--lr=0.5", "--json"], spec)).toEqual({
      epochs: 3,
      lr: 0.5,
      precision: undefined,
      json: true,
    });
    expect(parseFlags([], spec)).toEqual({ epochs: 5, lr: 0.1, precision: undefined, json: false });
  });

  it("names the flag, what it accepts and what came", () => {
    expect(() => parseFlags(["--epoch", "3"], spec)).toThrow(/unknown flag --epoch; known flags: --epochs, --lr/);
    expect(() => parseFlags(["--epochs", "0"], spec)).toThrow(/--epochs must be an integer ≥ 1; got "0"/);
    expect(() => parseFlags(["--epochs", "2.5"], spec)).toThrow(/--epochs must be an integer/);
    expect(() => parseFlags(["--lr"], spec)).toThrow(/--lr needs a value/);
    expect(() => parseFlags(["--precision", "fp8"], spec)).toThrow(/one of 32-true, bf16-mixed; got "fp8"/);
    expect(() => parseFlags(["--json=1"], spec)).toThrow(/--json takes no value/);
    expect(() => parseFlags(["x"], spec)).toThrow(/unexpected argument "x"/);
  });
});
