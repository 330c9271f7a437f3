// Rebuilds ffi/cuda/kernels/*.ptx from the .cu files beside them with nvcc (no GPU needed).
// Deterministic: the same nvcc gives the same bytes (no line info, no file paths in the output),
// so CI rebuilds where nvcc exists and compares with the committed PTX. The PTX targets
// compute_80 (Ampere and newer: A100, H100, H200); the driver JIT-compiles it for the GPU at
// cuModuleLoadData. `--check` also assembles each file with ptxas for sm_90.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";

/** The nvcc flags; exported for the tests, which check the committed PTX was made with them. */
export const NVCC_FLAGS = ["-ptx", "-arch=compute_80", "-O3"];

const dir = fileURLToPath(new URL("../ffi/cuda/kernels/", import.meta.url));

/** nvcc: $NVCC, else on PATH, else the toolkit's own. */
export function nvccPath() {
  if (process.env.NVCC) return process.env.NVCC;
  for (const p of (process.env.PATH ?? "").split(":")) if (p && existsSync(`${p}/nvcc`)) return `${p}/nvcc`;
  const home = process.env.CUDA_HOME ?? process.env.CUDA_PATH ?? "/usr/local/cuda";
  return existsSync(`${home}/bin/nvcc`) ? `${home}/bin/nvcc` : undefined;
}

function main() {
  const nvcc = nvccPath();
  if (!nvcc) {
    console.error("build:cuda: nvcc not found (set NVCC or CUDA_HOME, or install the CUDA toolkit)");
    process.exit(1);
  }
  // Build into a private folder, then rename into place: concurrent builds never see half a file.
  const tmp = mkdtempSync(`${tmpdir()}/plait-cuda-`);
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith(".cu"))
    .sort();
  for (const src of sources) {
    const out = `${tmp}/${src.replace(/\.cu$/, ".ptx")}`;
    // cwd is the kernels folder and the source a bare name: nothing of this machine's paths reaches the PTX
    execFileSync(nvcc, [...NVCC_FLAGS, "-o", out, src], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
    if (process.argv.includes("--check")) {
      execFileSync(nvcc.replace(/nvcc$/, "ptxas"), ["-arch=sm_90", "-o", "/dev/null", out], { stdio: "inherit" });
    }
  }
  for (const src of sources) {
    const name = src.replace(/\.cu$/, ".ptx");
    // copy next to the target, then rename: the temporary folder may be on another file system
    copyFileSync(`${tmp}/${name}`, `${dir}.${name}.tmp`);
    renameSync(`${dir}.${name}.tmp`, `${dir}${name}`);
  }
  console.log(`build:cuda: ${sources.length} kernels → ffi/cuda/kernels/*.ptx (${[nvcc, ...NVCC_FLAGS].join(" ")})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
