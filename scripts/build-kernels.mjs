// Rebuilds kernels/dist/*.wasm from kernels/as (AssemblyScript) and kernels/c (emscripten),
// two variants each: plain SIMD128 and relaxed-SIMD. Needs `tsc -p tsconfig.build.json` first
// (for the memory layout) and emscripten on PATH. Output is deterministic: CI rebuilds and
// compares against the committed files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import binaryen from "binaryen";
import * as L from "../dist/src/core/layout.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = `${root}kernels/dist`;
// Build into a private folder, then rename into place: concurrent builds never see half a file.
const tmp = mkdtempSync(`${tmpdir()}/plait-kernels-`);
// npm puts node_modules/.bin first on PATH, where the binaryen package's newer wasm-opt would
// shadow the one emscripten was built with (and reject clang 14's draft relaxed opcodes).
const PATH = (process.env.PATH ?? "")
  .split(":")
  .filter((dir) => !dir.endsWith("node_modules/.bin"))
  .join(":");
const run = (cmd, args) =>
  execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, PATH } });

function buildAssemblyScript(variant) {
  const out = `${tmp}/plait-as.${variant}.wasm`;
  run(process.execPath, [
    `${root}node_modules/assemblyscript/bin/asc.js`,
    "kernels/as/index.ts",
    "-o",
    out,
    "-O3",
    "--noAssert",
    "--runtime",
    "stub",
    "--importMemory",
    "--sharedMemory",
    "--noExportMemory",
    "--initialMemory",
    String(L.INITIAL_PAGES),
    "--maximumMemory",
    String(L.MAXIMUM_PAGES),
    "--memoryBase",
    String(L.AS_DATA_BASE),
    "--enable",
    variant === "relaxed" ? "simd,threads,relaxed-simd" : "simd,threads",
  ]);
  return out;
}

function buildC(variant) {
  const out = `${tmp}/plait-c.${variant}.wasm`;
  const sources = readdirSync(`${root}kernels/c`)
    .filter((f) => f.endsWith(".c"))
    .sort()
    .map((f) => `kernels/c/${f}`);
  run("emcc", [
    ...sources,
    "-o",
    out,
    "-O3",
    "-msimd128",
    ...(variant === "relaxed" ? ["-mrelaxed-simd", "-DPLAIT_RELAXED=1"] : []),
    "-matomics",
    "-mbulk-memory",
    "--no-entry",
    "-sSTANDALONE_WASM",
    "-sIMPORTED_MEMORY",
    "-Wl,--shared-memory",
    `-sGLOBAL_BASE=${L.C_DATA_BASE}`,
    "-sTOTAL_STACK=16384",
    "-sALLOW_MEMORY_GROWTH=1",
    `-sINITIAL_MEMORY=${L.INITIAL_PAGES * L.PAGE_BYTES}`,
    `-sMAXIMUM_MEMORY=${L.MAXIMUM_PAGES * L.PAGE_BYTES}`,
  ]);
  if (variant === "relaxed") patchRelaxedOpcodes(out);
  return out;
}

// clang 14 (emscripten 3.1.6) still encodes relaxed fused multiply-add with the draft opcodes
// (f32x4.fma 0xaf, f64x2.fma 0xcf), which no runtime accepts any more. The final spec gives them
// 0x105 / 0x107 with the same two-byte LEB length, so the rewrite is in place; binaryen's decoder
// then has to find exactly as many relaxed_madd instructions as sites were patched.
function patchRelaxedOpcodes(file) {
  const bytes = readFileSync(file);
  const map = new Map([
    [0xaf, [0x85, 0x02]],
    [0xcf, [0x87, 0x02]],
  ]);
  let patched = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    const to = bytes[i] === 0xfd && bytes[i + 2] === 0x01 ? map.get(bytes[i + 1]) : undefined;
    if (to) {
      bytes[i + 1] = to[0];
      bytes[i + 2] = to[1];
      patched++;
    }
  }
  const text = binaryen.readBinary(bytes).emitText();
  const found = (text.match(/relaxed_madd/g) ?? []).length;
  if (found !== patched)
    throw new Error(`${file}: patched ${patched} draft FMA opcodes but binaryen decodes ${found} relaxed_madd`);
  writeFileSync(file, bytes);
}

// Each toolchain's static data must stay in the region layout.ts gives it. Reads the data
// section (id 11) directly: active segments carry an `i32.const` offset.
function checkDataSegments(file, lo, hi) {
  const b = readFileSync(file);
  let p = 8;
  const leb = () => {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = b[p++];
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return result >>> 0;
  };
  while (p < b.length) {
    const id = b[p++];
    const size = leb();
    const next = p + size;
    if (id === 11) {
      for (let n = leb(); n > 0; n--) {
        const flags = leb();
        let offset = -1;
        if (flags !== 1) {
          if (flags === 2) leb();
          if (b[p++] !== 0x41) throw new Error(`${file}: data segment offset is not an i32.const`);
          offset = leb();
          p++; // end
        }
        const length = leb();
        p += length;
        if (offset >= 0 && (offset < lo || offset + length > hi)) {
          throw new Error(`${file}: data segment [${offset}, ${offset + length}) leaves its region [${lo}, ${hi})`);
        }
      }
    }
    p = next;
  }
}

const built = [];
for (const variant of ["simd", "relaxed"]) {
  const as = buildAssemblyScript(variant);
  checkDataSegments(as, L.AS_DATA_BASE, L.AS_DATA_END);
  const c = buildC(variant);
  checkDataSegments(c, L.C_DATA_BASE, L.C_DATA_END);
  built.push(as, c);
}
for (const file of built) renameSync(file, `${dist}/${file.slice(tmp.length + 1)}`);
console.log(`kernels built into ${dist}`);
