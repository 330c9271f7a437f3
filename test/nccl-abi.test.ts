// NCCL's ABI as plait speaks it (ffi/nccl.ts): enum values, the unique id's size, the config
// layout and the version encoding. Where an nccl.h is installed (a system package, CUDA_HOME,
// the nvidia-nccl wheel's include/), its enums are parsed and must match; without one, the values
// are checked against those read from NCCL 2.30.7's src/nccl.h.in, recorded here by hand.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  NCCL_API_MAGIC,
  NCCL_DTYPE,
  NCCL_HEADER_VERSION,
  NCCL_OP,
  NCCL_RESULTS,
  NCCL_UNIQUE_ID_BYTES,
  ncclConfig,
  ncclVersionCode,
  ncclVersionString,
} from "../ffi/nccl.ts";

/** Every `name = value` of the C enums in `text` (values in decimal or hex). */
function enumValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const body of text.matchAll(/typedef\s+enum\s*\w*\s*\{([^}]*)\}/g)) {
    for (const m of body[1].replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "").matchAll(/(\w+)\s*=\s*(0x[0-9a-fA-F]+|-?\d+)/g)) {
      out.set(m[1], Number(m[2]));
    }
  }
  return out;
}

function installedHeader(): string | undefined {
  const dirs = ["/usr/include", "/usr/local/include", "/usr/local/cuda/include"];
  for (const v of ["CUDA_HOME", "CUDA_PATH", "NCCL_HOME"])
    if (process.env[v]) dirs.push(join(process.env[v]!, "include"));
  for (const base of ["/usr/local/lib", "/usr/lib"]) {
    for (const py of existsSync(base) ? readdirSync(base).filter((n) => n.startsWith("python3")) : []) {
      for (const sp of ["site-packages", "dist-packages"]) dirs.push(join(base, py, sp, "nvidia", "nccl", "include"));
    }
  }
  return dirs.map((d) => join(d, "nccl.h")).find((f) => existsSync(f));
}

/** What NCCL 2.30.7's nccl.h.in says, recorded by hand. */
const RECORDED = {
  ncclSuccess: 0,
  ncclUnhandledCudaError: 1,
  ncclSystemError: 2,
  ncclInternalError: 3,
  ncclInvalidArgument: 4,
  ncclInvalidUsage: 5,
  ncclRemoteError: 6,
  ncclInProgress: 7,
  ncclTimeout: 8,
  ncclUint8: 1,
  ncclInt32: 2,
  ncclFloat16: 6,
  ncclFloat32: 7,
  ncclFloat64: 8,
  ncclBfloat16: 9,
  ncclSum: 0,
  ncclProd: 1,
  ncclMax: 2,
  ncclMin: 3,
  ncclAvg: 4,
};

/** plait's names for the same values. */
function plaitValues(): Record<string, number> {
  const out: Record<string, number> = {};
  NCCL_RESULTS.forEach((name, i) => {
    out[name] = i;
  });
  const dtypes = {
    u8: "ncclUint8",
    i32: "ncclInt32",
    f16: "ncclFloat16",
    f32: "ncclFloat32",
    f64: "ncclFloat64",
    bf16: "ncclBfloat16",
  };
  for (const [d, name] of Object.entries(dtypes)) out[name] = NCCL_DTYPE[d as keyof typeof NCCL_DTYPE];
  const ops = { sum: "ncclSum", prod: "ncclProd", max: "ncclMax", min: "ncclMin", avg: "ncclAvg" };
  for (const [o, name] of Object.entries(ops)) out[name] = NCCL_OP[o as keyof typeof NCCL_OP];
  return out;
}

describe("NCCL ABI", () => {
  const header = installedHeader();

  it(`enum values match ${header ?? `those recorded from NCCL ${NCCL_HEADER_VERSION}`}`, () => {
    const mine = plaitValues();
    expect(mine).toEqual(RECORDED);
    if (!header) return;
    const text = readFileSync(header, "utf8");
    const theirs = enumValues(text);
    for (const [name, value] of Object.entries(mine)) {
      // ncclTimeout is new in 2.30: an older header lacks it, and plait only names the code then
      if (!theirs.has(name) && name === "ncclTimeout") continue;
      expect(theirs.get(name), name).toBe(value);
    }
    expect(Number(/#define\s+NCCL_UNIQUE_ID_BYTES\s+(\d+)/.exec(text)?.[1])).toBe(NCCL_UNIQUE_ID_BYTES);
    const magic = /#define\s+NCCL_API_MAGIC\s+(0x[0-9a-fA-F]+)/.exec(text)?.[1];
    if (magic) expect(Number(magic)).toBe(NCCL_API_MAGIC);
  });

  it.skipIf(process.platform !== "linux")(
    "importing the NCCL comm, its store and bindings maps no native library",
    async () => {
      await import("../src/comm/index.ts");
      const maps = readFileSync("/proc/self/maps", "utf8");
      expect(["koffi", "libnccl", "libcudart"].filter((lib) => maps.includes(lib))).toEqual([]);
    },
  );

  it("the enum parser reads C enums with aliases, comments and hex values", () => {
    const text = `typedef enum { a = 0, b = 0, // alias\n c /* x = 9 */ = 0x10 } t;\ntypedef enum e2 { z = -1 } u;`;
    expect(Object.fromEntries(enumValues(text))).toEqual({ a: 0, b: 0, c: 16, z: -1 });
  });

  it("the unique id is 128 bytes; the config is a 2.14 ncclConfig_t with blocking = 0", () => {
    expect(NCCL_UNIQUE_ID_BYTES).toBe(128);
    const c = ncclConfig(false);
    const v = new DataView(c.buffer);
    expect(c.length).toBe(24);
    expect(v.getBigUint64(0, true)).toBe(20n); // size_t size, through blocking
    expect(v.getUint32(8, true)).toBe(0xcafebeef);
    expect(v.getUint32(12, true)).toBe(21400);
    expect(v.getInt32(16, true)).toBe(0);
    expect(v.getInt32(20, true)).toBe(-(2 ** 31));
    expect(new DataView(ncclConfig(true).buffer).getInt32(16, true)).toBe(1);
  });

  it("version codes: NCCL_VERSION's two encodings, and back to strings", () => {
    expect(ncclVersionCode(2, 8, 4)).toBe(2804);
    expect(ncclVersionCode(2, 30, 7)).toBe(23007);
    expect(ncclVersionCode(2, 14, 0)).toBe(21400);
    expect(ncclVersionString(23007)).toBe("2.30.7");
    expect(ncclVersionString(2804)).toBe("2.8.4");
    expect(
      ncclVersionString(NCCL_HEADER_VERSION.split(".").reduce((a, x, i) => a + Number(x) * [10000, 100, 1][i], 0)),
    ).toBe(NCCL_HEADER_VERSION);
  });
});
