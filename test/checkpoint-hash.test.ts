import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load, save } from "../src/checkpoint/index.ts";
import { runtime } from "../src/core/runtime.ts";
import { scope } from "../src/core/scope.ts";
import { tensor } from "../src/core/tensor.ts";

// The sha256 each tensor file has in state.json, checked on load: cases besides the flipped last
// byte in test/checkpoint.test.ts, each leaving the file's length and format intact, so that only
// the hash can tell.

const root = mkdtempSync(join(tmpdir(), "plait-ckpt-hash-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A checkpoint of two f32 leaves whose values start at `base`. */
function saved(base: number): string {
  const dir = join(root, `c${dirs++}`);
  scope(() =>
    save(dir, {
      params: { w: tensor([base, base + 1, base + 2, base + 3], [2, 2]), b: tensor([base * 10, -base], [2]) },
    }),
  );
  return dir;
}

function expectRefused(dir: string): void {
  const before = runtime().arena.bytesInUse;
  expect(() => load(dir)).toThrow(
    /^plait: load: .*params\.safetensors .*sha256 [0-9a-f]{64}.* does not match state\.json/,
  );
  expect(runtime().arena.bytesInUse).toBe(before);
}

describe("checkpoint file hashes", () => {
  it("an intact checkpoint loads (the cases below differ from it in one thing only)", () => {
    const dir = saved(1);
    scope(() => {
      const { params } = load<{ params: { w: any; b: any } }>(dir);
      expect([params.w.toArray(), params.b.toArray()]).toEqual([
        [1, 2, 3, 4],
        [10, -1],
      ]);
    });
  });

  it("refuses a tensor file from another save of the same model (same length, valid, other values)", () => {
    const a = saved(1);
    const b = saved(5);
    const file = "params.safetensors";
    expect(readFileSync(join(b, file)).length).toBe(readFileSync(join(a, file)).length);
    cpSync(join(b, file), join(a, file));
    expectRefused(a);
  });

  it("refuses one changed value in the middle of the tensor data", () => {
    const dir = saved(1);
    const p = join(dir, "params.safetensors");
    const bytes = readFileSync(p);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    bytes[headerEnd + 5] ^= 0x10; // inside the first tensor's bytes, not at either end
    writeFileSync(p, bytes);
    expectRefused(dir);
  });

  it("refuses an intact file whose recorded hash is another", () => {
    const dir = saved(1);
    const doc = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
    const other = createHash("sha256").update("something else").digest("hex");
    doc.files["params.safetensors"].sha256 = other;
    writeFileSync(join(dir, "state.json"), JSON.stringify(doc));
    expectRefused(dir);
  });
});
