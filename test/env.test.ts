// `plait env` against what this machine really has, found independently of plait's own search:
// the `ldconfig -p` cache, /usr/local/cuda*, the runtime's own version and WebAssembly validation.
// Every library entry is checked both ways (present here: found, with its path and version;
// absent: not found, with the paths tried and the install command), so the test holds on machines
// with more or less installed. Runs the built CLI (dist/) as a user would, and Deno's source run
// without --allow-ffi.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { EnvReport } from "../src/cli/env.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = `${ROOT}dist/src/cli/main.js`;

function plaitEnv(env: Record<string, string | undefined> = {}, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, "env", ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`plait env exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const report = (env: Record<string, string | undefined> = {}): EnvReport => JSON.parse(plaitEnv(env, "--json"));

/** soname → path from the dynamic loader's cache (this process's architecture only). */
const ldcache = new Map<string, string>();
const ldconfig = ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"].find((c) => spawnSync(c, ["-p"]).status === 0)!;
for (const line of execFileSync(ldconfig, ["-p"], { encoding: "utf8" }).split("\n")) {
  const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
  if (m && m[2].includes("x86-64") === (process.arch === "x64") && !ldcache.has(m[1])) ldcache.set(m[1], m[3]);
}
const cached = (...sonames: string[]) => sonames.find((s) => ldcache.has(s));

/** libcudart.so.<major> files in /usr/local/cuda*\/lib* (as the toolkit installs them). */
function cudartFiles(): string[] {
  const out: string[] = [];
  for (const root of readdirSync("/usr/local").filter((n) => /^cuda(-[\d.]+)?$/.test(n))) {
    for (const sub of ["lib64", "lib", "targets/x86_64-linux/lib"]) {
      const dir = `/usr/local/${root}/${sub}`;
      if (existsSync(dir)) out.push(...readdirSync(dir).filter((f) => /^libcudart\.so\.\d+$/.test(f)));
    }
  }
  return out;
}

describe("plait env --json: one object, true to this machine", () => {
  const r = report({ PLAIT_BLAS: undefined, PLAIT_THREADS: undefined });

  it("runtime, WebAssembly features and the kernel build", () => {
    expect(r.plait.version).toBe(JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")).version);
    expect(r.runtime).toMatchObject({ name: "node", version: process.versions.node, v8: process.versions.v8 });
    expect(r.runtime.platform).toBe(process.platform);
    const relaxed = WebAssembly.validate(readFileSync(`${ROOT}kernels/dist/plait-c.relaxed.wasm`));
    expect(r.wasm).toMatchObject({ simd: true, threads: true, relaxedSimd: relaxed, usable: true });
    expect(r.wasm.kernels.variant).toBe(relaxed ? "relaxed" : "simd");
    expect(realpathSync(r.wasm.kernels.dir!)).toBe(realpathSync(`${ROOT}kernels/dist`));
  });

  it("cores and kernel threads (PLAIT_THREADS when set); the cluster field (detected environment)", () => {
    expect(r.cpu.cores).toBe(availableParallelism());
    expect(r.cpu.kernelThreads).toBe(availableParallelism());
    expect(report({ PLAIT_THREADS: "1" }).cpu).toMatchObject({ kernelThreads: 1, threadsFrom: "PLAIT_THREADS" });
    // this test's environment may itself be a cluster job: compare with detection's own answer
    expect(r.cluster).toMatchObject({ found: true, usable: true, name: r.cluster.environment?.name });
    expect(r.cluster.reason).toMatch(new RegExp(`^${r.cluster.name}: rank \\d+ of \\d+`));
  });

  it("ffi: koffi, the installed version", () => {
    const version = JSON.parse(readFileSync(`${ROOT}node_modules/koffi/package.json`, "utf8")).version;
    expect(r.ffi).toMatchObject({ found: true, usable: true, reason: null, library: "koffi", version });
  });

  it("blas: the library the loader cache holds, in use, with OpenBLAS's version and config; or why not", () => {
    const soname = cached("libopenblas.so.0", "libcblas.so.3");
    if (soname) {
      expect(r.blas).toMatchObject({ found: true, usable: true, inUse: true, reason: null, mode: "auto" });
      expect(realpathSync(r.blas.file ?? r.blas.path!)).toBe(realpathSync(ldcache.get(soname)!));
      if (soname === "libopenblas.so.0") {
        expect(r.blas.vendor).toBe("OpenBLAS");
        expect(r.blas.config).toMatch(/^OpenBLAS \d+\.\d+\.\d+ /);
        expect(r.blas.file).toContain(r.blas.version!);
      }
    } else {
      expect(r.blas).toMatchObject({ found: false, usable: false, inUse: false });
      expect(r.blas.reason).toContain("apt-get install libopenblas0-pthread");
    }
  });

  it("blas: off, and a path that is not there, say so", () => {
    const off = report({ PLAIT_BLAS: "off" }).blas;
    expect(off).toMatchObject({ mode: "off", inUse: false, found: false });
    expect(off.reason).toMatch(/turned off \(PLAIT_BLAS=off\)/);
    const missing = report({ PLAIT_BLAS: "/nonexistent/libblas.so" }).blas;
    expect(missing).toMatchObject({ mode: "/nonexistent/libblas.so", found: false, usable: false });
    expect(missing.reason).toMatch(/\/nonexistent\/libblas\.so \(from PLAIT_BLAS\) cannot be used/);
  });

  it("mpi: Open MPI or MPICH from the loader cache with its version string (MPI_Init not called); or why not", () => {
    const soname = cached("libmpi.so.40", "libmpich.so.12", "libmpi.so.12");
    if (soname) {
      expect(r.mpi).toMatchObject({ found: true, usable: true, path: ldcache.get(soname) });
      expect(r.mpi.vendor).toBe(soname === "libmpi.so.40" ? "Open MPI" : "MPICH");
      expect(r.mpi.library).toContain(r.mpi.version!);
      expect(r.mpi.standard).toMatch(/^[34]\.\d$/);
      expect(r.mpi.reason).toMatch(/MPI_Init not called/);
    } else {
      expect(r.mpi).toMatchObject({ found: false, usable: false });
      expect(r.mpi.install).toMatch(/libopenmpi3/);
    }
  });

  it("cuda: libcudart's path and version; the driver's version, or exactly why there is none", () => {
    const files = cudartFiles();
    const soname = cached("libcudart.so.13", "libcudart.so.12") ?? files[0];
    if (!soname) {
      expect(r.cuda).toMatchObject({ found: false, usable: false });
      return;
    }
    expect(r.cuda.found).toBe(true);
    expect(r.cuda.runtimeVersion?.split(".")[0]).toBe(/\.so\.(\d+)$/.exec(r.cuda.path!)?.[1]);
    const driver = cached("libcuda.so.1");
    if (!driver) {
      // the toolkit without the driver: the runtime loads, no device answers
      expect(r.cuda).toMatchObject({ usable: false, devices: 0 });
      expect(r.cuda.driver).toMatchObject({ found: false, usable: false, version: null });
      expect(r.cuda.driver!.reason).toMatch(/libcuda\.so\.1 not found/);
      expect(r.cuda.deviceError).toEqual({
        code: 35,
        name: "cudaErrorInsufficientDriver",
        message: "CUDA driver version is insufficient for CUDA runtime version",
      });
      expect(r.cuda.reason).toMatch(/cudaGetDeviceCount returned 35 \(cudaErrorInsufficientDriver/);
    } else {
      expect(r.cuda.driver!.found).toBe(true);
      expect(r.cuda.usable).toBe((r.cuda.devices ?? 0) > 0);
    }
    expect(r.cuda.cublas!.found).toBe(cached("libcublas.so.13", "libcublas.so.12") !== undefined);
  });

  it("nccl: its path and version, or not found with the paths tried and how to install it", () => {
    if (cached("libnccl.so.2")) {
      expect(r.nccl.found).toBe(true);
      expect(r.nccl.version).toMatch(/^2\.\d+\.\d+$/);
    } else {
      expect(r.nccl).toMatchObject({ found: false, usable: false, reason: "not found" });
      expect(r.nccl.tried.map((t) => t.path)).toContain("libnccl.so.2");
      expect(r.nccl.install).toMatch(/libnccl2/);
    }
  });
});

describe("plait env (text)", () => {
  it("prints one block per entry, each starting with its status", () => {
    const text = plaitEnv({ PLAIT_BLAS: undefined });
    for (const label of ["runtime", "wasm", "cpu", "cluster", "ffi", "blas", "mpi", "cuda", "nccl"]) {
      expect(text).toMatch(new RegExp(`^${label} +\\S`, "m"));
    }
    expect(text).toMatch(/^cluster +(lightning|slurm|lsf|torchelastic|mpi): rank \d+ of \d+/m);
    if (cached("libopenblas.so.0")) expect(text).toMatch(/^blas +in use: OpenBLAS \d/m);
  });

  it("refuses an unknown flag, naming the known ones", () => {
    const r = spawnSync(process.execPath, [CLI, "env", "--jsno"], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown flag --jsno; known flags: --json, --help/);
  });
});

describe("plait env on Deno", () => {
  const deno = `${ROOT}node_modules/.bin/deno`;
  it("without --allow-ffi: the FFI entry says why, the libraries are not checked, matmul stays on WASM", () => {
    const out = execFileSync(
      deno,
      ["run", "--allow-read", "--allow-env", "--allow-sys", `${ROOT}src/cli/main.ts`, "env", "--json"],
      {
        encoding: "utf8",
        env: { ...process.env, PLAIT_BLAS: "" },
      },
    );
    const r = JSON.parse(out) as EnvReport;
    expect(r.runtime.name).toBe("deno");
    expect(r.ffi).toMatchObject({ usable: false });
    expect(r.ffi.reason).toMatch(/Deno runs without --allow-ffi.*deno run --allow-ffi/);
    expect(r.blas).toMatchObject({ inUse: false });
    expect(r.blas.reason).toMatch(/--allow-ffi/);
  });

  it("with --allow-ffi: the same BLAS entry as Node", () => {
    const out = execFileSync(
      deno,
      ["run", "--allow-read", "--allow-env", "--allow-sys", "--allow-ffi", `${ROOT}src/cli/main.ts`, "env", "--json"],
      { encoding: "utf8", env: { ...process.env, PLAIT_BLAS: "" } },
    );
    const r = JSON.parse(out) as EnvReport;
    const node = report({ PLAIT_BLAS: undefined });
    expect(r.blas.inUse).toBe(node.blas.inUse);
    expect(r.blas.config).toBe(node.blas.config);
  });
});
