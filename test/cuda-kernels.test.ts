// The CUDA kernels without a GPU: every .cu has its committed .ptx, the PTX matches a rebuild
// with scripts/build-cuda.mjs's flags (where nvcc exists) and assembles for sm_90 with ptxas
// (where ptxas exists); every entry's parameters in the PTX match the signature the launcher
// packs; the packing itself (offsets, alignment, values, pointer array, argument errors); and
// without a driver a launch fails with the LibraryError naming libcuda.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gridFor, KERNELS, launchKernel, packParams, paramLayout, ptxSource } from "../ffi/cuda/kernels.ts";
import { CUDA_DRIVER_SPEC } from "../ffi/cuda.ts";
import { libraryMode, openLibrary } from "../ffi/find.ts";
import { addressOf } from "../ffi/native.ts";
import { NVCC_FLAGS, nvccPath } from "../scripts/build-cuda.mjs";

const dir = new URL("../ffi/cuda/kernels/", import.meta.url).pathname;
const sources = readdirSync(dir)
  .filter((f) => f.endsWith(".cu"))
  .sort();
const modules = sources.map((f) => f.replace(/\.cu$/, ""));
const nvcc: string | undefined = nvccPath();
const ptxas = nvcc ? nvcc.replace(/nvcc$/, "ptxas") : undefined;
const noNvcc = nvcc ? "" : " (skipped: no nvcc; set NVCC or CUDA_HOME)";
const noPtxas = ptxas && existsSync(ptxas) ? "" : " (skipped: no ptxas)";

/** `.visible .entry name(.param .type name_param_0, …)` of a PTX text: entry → param types. */
function entries(ptx: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of ptx.matchAll(/\.visible \.entry (\w+)\(([^)]*)\)/g)) {
    out.set(
      m[1],
      [...m[2].matchAll(/\.param \.(\w+)/g)].map((p) => p[1]),
    );
  }
  return out;
}

const PTX_TYPE = { ptr: "u64", u64: "u64", i32: "u32", u32: "u32", f32: "f32" } as const;

describe("committed PTX", () => {
  it("every .cu has a .ptx and every module the launcher names exists", () => {
    expect(modules.length).toBeGreaterThan(0);
    for (const m of modules) expect(existsSync(join(dir, `${m}.ptx`)), `${m}.ptx`).toBe(true);
    for (const spec of Object.values(KERNELS)) expect(modules).toContain(spec.module);
  });

  it("each entry's parameters match the launcher's signature, and no entry is unknown to it", () => {
    const seen = new Set<string>();
    for (const m of modules) {
      for (const [name, params] of entries(ptxSource(m))) {
        seen.add(name);
        const spec = KERNELS[name];
        expect(spec, `kernel ${name} of ${m}.ptx is missing from KERNELS`).toBeDefined();
        expect(spec.module).toBe(m);
        expect(params, name).toEqual(spec.params.map((t) => PTX_TYPE[t]));
      }
    }
    expect([...seen].sort()).toEqual(Object.keys(KERNELS).sort());
  });

  it("targets compute_80 with 64-bit addresses", () => {
    for (const m of modules) {
      const ptx = ptxSource(m);
      expect(ptx).toMatch(/^\.target sm_80$/m);
      expect(ptx).toMatch(/^\.address_size 64$/m);
    }
  });

  it.skipIf(noNvcc !== "")(
    `a rebuild with nvcc ${NVCC_FLAGS.join(" ")} gives the committed bytes${noNvcc}`,
    () => {
      const tmp = mkdtempSync(join(tmpdir(), "plait-ptx-"));
      for (const src of sources) {
        const out = join(tmp, src.replace(/\.cu$/, ".ptx"));
        execFileSync(nvcc!, [...NVCC_FLAGS, "-o", out, src], { cwd: dir, stdio: "pipe" });
        expect(readFileSync(out, "utf8"), `${src}: run npm run build:cuda and commit`).toBe(
          readFileSync(join(dir, src.replace(/\.cu$/, ".ptx")), "utf8"),
        );
      }
    },
    120_000,
  );

  it.skipIf(noPtxas !== "")(`every module assembles for sm_90 (H100/H200) with ptxas${noPtxas}`, () => {
    for (const m of modules) {
      execFileSync(ptxas!, ["-arch=sm_90", "-o", "/dev/null", join(dir, `${m}.ptx`)], { stdio: "pipe" });
    }
  });
});

describe("kernel parameter packing", () => {
  it("lays each argument at its natural alignment", () => {
    expect(paramLayout(["ptr", "f32", "u64", "i32", "f32", "ptr"])).toEqual({
      offsets: [0, 8, 16, 24, 28, 32],
      bytes: 40,
    });
    expect(paramLayout(["f32", "ptr"])).toEqual({ offsets: [0, 8], bytes: 16 });
    expect(paramLayout([])).toEqual({ offsets: [], bytes: 8 });
  });

  it("writes the values and points at each one", () => {
    const types = KERNELS.sgd_f32.params;
    const args = [0x7f0000001000n, 0x7f0000002000n, 0, 1000, 0.5, 1e-4, 0.9, 1, 2, 1];
    const p = packParams("sgd_f32", types, args, () => 4096n);
    const view = new DataView(p.values.buffer);
    expect(view.getBigUint64(p.offsets[0], true)).toBe(0x7f0000001000n);
    expect(view.getBigUint64(p.offsets[2], true)).toBe(0n);
    expect(view.getBigUint64(p.offsets[3], true)).toBe(1000n);
    expect(view.getFloat32(p.offsets[4], true)).toBe(0.5);
    expect(view.getFloat32(p.offsets[5], true)).toBe(Math.fround(1e-4));
    expect(view.getInt32(p.offsets[8], true)).toBe(2);
    expect([...p.pointers]).toEqual(p.offsets.map((o) => 4096n + BigInt(o)));
  });

  it("with koffi's address of the value buffer (what cuLaunchKernel reads)", () => {
    const p = packParams("add_f32", KERNELS.add_f32.params, [1n, 2n, 3n, 4]);
    const base = addressOf(p.values);
    expect(p.pointers[0]).toBe(base);
    expect([...p.pointers].map((x) => Number(x - base))).toEqual([...p.offsets]);
  });

  it("refuses a wrong count or a value its type cannot hold, naming the kernel and argument", () => {
    const t = KERNELS.unscale_f32.params;
    expect(() => packParams("unscale_f32", t, [1n, 2n])).toThrow(
      /kernel unscale_f32: expected 5 arguments \(ptr, ptr, u64, f32, ptr\), got 2/,
    );
    expect(() => packParams("unscale_f32", t, [-1, 2n, 3, 1, 4n])).toThrow(
      /argument 0 \(ptr\) must be a non-negative integer/,
    );
    expect(() => packParams("unscale_f32", t, [1n, 2n, 3, 1n, 4n])).toThrow(
      /argument 3 \(f32\) must be a number, got bigint 1/,
    );
    const s = KERNELS.sgd_f32.params;
    const ok = [1n, 2n, 3n, 4, 0.1, 0, 0.9, 1, 2, 0];
    expect(() => packParams("sgd_f32", s, ok.with(8, 1.5))).toThrow(/argument 8 \(i32\) must be an integer/);
    expect(() => packParams("sgd_f32", s, ok.with(8, 2 ** 31))).toThrow(/32-bit signed integer/);
    expect(() => packParams("sgd_f32", s, ok.with(3, 2n ** 64n))).toThrow(/below 2\^64/);
  });

  it("gridFor: one thread per element up to 65536 blocks of 256 (the kernels loop over the rest)", () => {
    expect(gridFor(0)).toEqual({ grid: [1], block: [256] });
    expect(gridFor(1000)).toEqual({ grid: [4], block: [256] });
    expect(gridFor(1e9)).toEqual({ grid: [65536], block: [256] });
  });
});

const hasDriver = (() => {
  try {
    openLibrary(CUDA_DRIVER_SPEC, libraryMode(CUDA_DRIVER_SPEC), []);
    return true;
  } catch {
    return false;
  }
})();

describe("launching", () => {
  it("refuses an unknown kernel by name", () => {
    expect(() => launchKernel("gelu_f32", 0, gridFor(1), [])).toThrow(
      /no CUDA kernel named gelu_f32; known: cast_f32_f16/,
    );
  });

  it.skipIf(hasDriver)("without a driver: a LibraryError naming libcuda.so.1 and the install", () => {
    expect(() => launchKernel("add_f32", 0, gridFor(4), [1n, 2n, 3n, 4])).toThrow(
      /CUDA driver: not found[\s\S]*libcuda\.so\.1[\s\S]*install: the NVIDIA driver/,
    );
  });
});
