import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The README's examples, run as a user would: each in its own process, plait resolved through
// the package's exports (dist/: build first). The ```ts blocks are TypeScript (scripts/consumer.mjs
// type-checks them as a strict consumer would); here their types are stripped for Node 20.

const root = fileURLToPath(new URL("..", import.meta.url));

describe("docs/examples/ddp.mjs", () => {
  it("trains on two ranks to the demo's accuracy and exits cleanly", () => {
    const script = join(root, "docs/examples/ddp.mjs");
    const r = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("epoch "))).toHaveLength(10); // printed by rank 0 only
    const accuracy = Number(/test accuracy ([\d.]+)%/.exec(lines.at(-1) ?? "")?.[1]);
    expect(accuracy).toBeGreaterThanOrEqual(95);
  }, 130_000);
});

describe("README.md", () => {
  // Every ```ts block that starts with an import from "plait" is a whole program.
  const blocks = [
    ...readFileSync(join(root, "README.md"), "utf8").matchAll(/```ts\n(import [^\n]* from "plait";\n[\s\S]*?)```/g),
  ].map((m) => m[1]);

  it("has its complete examples", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  for (const [i, code] of blocks.entries()) {
    it(`example ${i + 1} (${code.split("\n")[0].slice(0, 60)}…) runs`, () => {
      // inside the package, so that "plait" resolves to it by name; run from an empty folder
      const dir = join(root, "test", `.readme-${process.pid}`);
      const cwd = mkdtempSync(join(tmpdir(), "plait-readme-"));
      mkdirSync(dir, { recursive: true });
      try {
        const file = join(dir, `example-${i + 1}.mjs`);
        const js = ts.transpileModule(code, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText;
        writeFileSync(file, js);
        const r = spawnSync(process.execPath, [file], { cwd, encoding: "utf8", timeout: 60_000 });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).not.toMatch(/NaN|undefined/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 70_000);
  }
});
