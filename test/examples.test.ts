import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The README's data-parallel example, run as a user would: its own process, two ranks from
// launch(), plait resolved through the package's exports (dist/: build first).

describe("docs/examples/ddp.mjs", () => {
  it("trains on two ranks to the demo's accuracy and exits cleanly", () => {
    const script = fileURLToPath(new URL("../docs/examples/ddp.mjs", import.meta.url));
    const r = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("epoch "))).toHaveLength(10); // printed by rank 0 only
    const accuracy = Number(/test accuracy ([\d.]+)%/.exec(lines.at(-1) ?? "")?.[1]);
    expect(accuracy).toBeGreaterThanOrEqual(95);
  }, 130_000);
});
