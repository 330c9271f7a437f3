// test/gpu/run.sh and pack.sh where there is no GPU: both parse and pass shellcheck; run.sh stops
// with "no NVIDIA GPU/driver" (exit 2) here; and with a stand-in nvidia-smi, the stand-in NCCL
// (test/fixtures/fake-nccl.c) and a node packed by pack.sh, it unpacks that node and runs its
// test and bench scripts to the end, writing their JSON.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUN = join(ROOT, "test/gpu/run.sh");
const PACK = join(ROOT, "test/gpu/pack.sh");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

describe("test/gpu scripts without a GPU", () => {
  it("parse (bash -n) and pass shellcheck where it is installed", () => {
    for (const f of [RUN, PACK]) execFileSync("bash", ["-n", f]);
    if (has("shellcheck")) execFileSync("shellcheck", [RUN, PACK]);
  });

  it.skipIf(has("nvidia-smi"))("run.sh says there is no NVIDIA GPU/driver and exits 2", () => {
    const out = join(mkdtempSync(join(tmpdir(), "plait-gpu-")), "out");
    const r = spawnSync("bash", [RUN, out], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("run.sh: no NVIDIA GPU/driver: nvidia-smi is not on PATH");
    expect(JSON.parse(readFileSync(join(out, "env.json"), "utf8"))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no NVIDIA GPU\/driver/),
    });
    const usage = spawnSync("bash", [RUN], { encoding: "utf8" });
    expect([usage.status, usage.stderr.trim()]).toEqual([2, "usage: bash test/gpu/run.sh <out-dir>"]);
  });

  it.skipIf(!has("cc") || !has("xz") || !existsSync(join(ROOT, "dist/src/comm/nccl.js")))(
    "with a stand-in GPU: pack.sh's node unpacks and runs the NCCL tests and the bench to their JSON",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "plait-gpu-"));
      const lib = join(dir, "libfake.so");
      execFileSync("cc", ["-shared", "-fPIC", "-O1", "-o", lib, join(ROOT, "test/fixtures/fake-nccl.c")]);
      const bin = join(dir, "bin");
      execFileSync("mkdir", ["-p", bin]);
      writeFileSync(join(bin, "nvidia-smi"), "#!/bin/sh\necho 'Stand-in GPU, 81559 MiB, 580.00'\n");
      chmodSync(join(bin, "nvidia-smi"), 0o755);
      const carry = join(dir, "carry");
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
      const pack = spawnSync("bash", [PACK], {
        encoding: "utf8",
        env: {
          ...env,
          PLAIT_PACK_DIR: carry,
          PLAIT_PACK_XZ: "0",
          PLAIT_PACK_SKIP_BUILD: "1",
          PLAIT_PACK_NODE: process.execPath,
        },
      });
      expect(pack.status, pack.stderr).toBe(0);
      expect(pack.stdout).toContain(`pack.sh: unpacked node says ${process.version}`);
      expect(pack.stdout).toMatch(/total \d+ of 67108864/);
      const out = join(dir, "out");
      const r = spawnSync("bash", [RUN, out], {
        encoding: "utf8",
        timeout: 150_000,
        env: { ...env, PLAIT_GPU_CARRY: carry, PLAIT_GPU_PACKED_NODE: "1", PLAIT_NCCL: lib, PLAIT_CUDART: lib },
      });
      const log = readFileSync(join(out, "log.txt"), "utf8");
      expect(log).toContain("run.sh: GPU: Stand-in GPU, 81559 MiB, 580.00");
      expect(log).toMatch(new RegExp(`run.sh: node: /\\S+/node ${process.version.replace(/\./g, "\\.")}`));
      expect(log).not.toContain(`node: ${process.execPath} `);
      const tests = JSON.parse(readFileSync(join(out, "tests.json"), "utf8"));
      // a stand-in NCCL runs every rank alone: the one-process cases pass, the two-process sums cannot
      const single = tests.results.filter((t: { name: string }) => !t.name.startsWith("two processes"));
      expect(single.length).toBeGreaterThanOrEqual(8);
      for (const t of single) expect(t, JSON.stringify(t)).toMatchObject({ ok: true });
      expect(r.status).toBe(1);
      // the training cases (train.mjs) need cuBLAS and the CUDA driver, which the stand-in lacks:
      // each must fail naming the missing library (never with a wrong number)
      const train = JSON.parse(readFileSync(join(out, "train.json"), "utf8")).results as {
        name: string;
        ok: boolean;
        error?: string;
      }[];
      const local = train.filter((t) => !t.name.startsWith("two processes"));
      expect(local.length).toBeGreaterThanOrEqual(8);
      for (const t of local) expect(t.error, t.name).toMatch(/^LibraryError: plait: (cuBLAS|CUDA driver): not found/);
      expect(log).toContain("run.sh: tests: test/gpu/train.mjs");
      const bench = JSON.parse(readFileSync(join(out, "bench.json"), "utf8"));
      expect(bench.d2d_copy.gbps_read_write).toBeGreaterThan(0);
      expect(bench.nccl_allreduce_1rank.rows.map((x: { mib: number }) => x.mib)).toEqual([1, 16, 256]);
      expect(JSON.parse(readFileSync(join(out, "env.json"), "utf8")).nccl.path).toBe(lib);
      expect(bench.mnist_demo.error).toMatch(/plait demo --epochs 1 --device cuda:0: exit 1/); // no cuBLAS here
    },
    180_000,
  );
});
