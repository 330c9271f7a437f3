// `plait env`: what this machine and runtime give plait, in the spirit of DeepSpeed's ds_report and
// torch's collect_env. A readable report, or with --json the same as one object. Every entry says
// whether it is found, whether plait can use it, and why not (or a caveat).
import { readFileSync, realpathSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { type BlasStatus, blasStatus } from "../../ffi/blas.ts";
import { type CudaProbe, probeCuda } from "../../ffi/cuda.ts";
import { readEnv } from "../../ffi/find.ts";
import { type MpiProbe, probeMpi } from "../../ffi/mpi.ts";
import { ffiUnavailable, koffiVersion, message, runtimeName } from "../../ffi/native.ts";
import { type NcclProbe, probeNccl } from "../../ffi/nccl.ts";
import { checkGemmKernelName, type GemmKernelChoice, gemmKernel } from "../core/gemmKernel.ts";
import { chooseVariant, kernelDist } from "../core/kernels.ts";
import { deterministic, runtime, runtimeStarted } from "../core/runtime.ts";
import {
  type ClusterEnvironment,
  ClusterEnvironmentError,
  describeEnvironment,
  detectEnvironment,
} from "../env/index.ts";
import { type FlagSpec, flagHelp, parseFlags } from "./args.ts";

/** What every entry has. */
export interface EnvEntry {
  found: boolean;
  usable: boolean;
  reason: string | null;
}

export interface EnvReport {
  plait: { version: string | null };
  runtime: { name: "node" | "deno" | "bun"; version: string; v8: string | null; platform: string; arch: string };
  wasm: EnvEntry & {
    simd: boolean;
    relaxedSimd: boolean;
    threads: boolean;
    /** The kernel build in use (or that would be): "simd" or "relaxed", from PLAIT_SIMD or detection. */
    kernels: { variant: string | null; forced: string | null; dir: string | null };
    /**
     * Deterministic mode (configure({ deterministic }) / PLAIT_DETERMINISTIC): the same bits on
     * every runtime and thread count; null with the reason when PLAIT_DETERMINISTIC is invalid.
     */
    deterministic: boolean | null;
    /**
     * The f32 GEMM kernel (src/core/gemmKernel.ts): once the runtime runs, the choice (timed,
     * forced by PLAIT_GEMM_KERNEL, or deterministic mode's fixed one); before, what PLAIT_GEMM_KERNEL
     * or deterministic mode fix, else null (timed at the first product). `error` when
     * PLAIT_GEMM_KERNEL names no kernel.
     */
    gemm: { kernel: GemmKernelChoice | null; forced: string | null; error: string | null };
  };
  cpu: { model: string | null; cores: number; kernelThreads: number; threadsFrom: string };
  /**
   * The cluster environment `detectEnvironment()` finds (SLURM, LSF, torchrun, MPI launchers, else
   * the Lightning-style default): its name and fields, or, when a variable is bad, the error's text
   * as the reason (with the name of the environment that was being read).
   */
  cluster: EnvEntry & { name: string | null; environment: ClusterEnvironment | null };
  ffi: EnvEntry & { library: "koffi"; version: string | null };
  blas: EnvEntry & BlasStatus & { file: string | null };
  mpi: EnvEntry & MpiProbe;
  cuda: EnvEntry & CudaProbe;
  nccl: EnvEntry & NcclProbe;
}

/** Gathers the report. Loads koffi and probes the libraries (except where a mode says off). */
export function envReport(): EnvReport {
  return {
    plait: { version: packageVersion() },
    runtime: runtimeInfo(),
    wasm: wasmInfo(),
    cpu: cpuInfo(),
    cluster: clusterInfo(),
    ffi: ffiInfo(),
    blas: guard(blasInfo),
    mpi: guard(probeMpi),
    cuda: guard(cudaInfo),
    nccl: guard(ncclInfo),
  };
}

/** A probe that throws (it should not) becomes an entry that says so instead of ending the report. */
function guard<T>(probe: () => T): T {
  try {
    return probe();
  } catch (e) {
    return { found: false, usable: false, reason: `probe failed: ${message(e)}`, tried: [] } as T;
  }
}

function packageVersion(): string | null {
  try {
    return JSON.parse(readFileSync(new URL("../../package.json", kernelDist()), "utf8")).version ?? null;
  } catch {
    return null;
  }
}

function runtimeInfo(): EnvReport["runtime"] {
  const g = globalThis as any;
  const name = runtimeName();
  const version =
    name === "deno" ? g.Deno.version.deno : name === "bun" ? g.process.versions.bun : g.process.versions.node;
  const v8 = name === "deno" ? g.Deno.version.v8 : (g.process?.versions?.v8 ?? null);
  return { name, version, v8, platform: g.process?.platform ?? "unknown", arch: g.process?.arch ?? "unknown" };
}

function wasmInfo(): EnvReport["wasm"] {
  let dir: URL | null = null;
  const valid = (variant: string) => {
    try {
      dir ??= kernelDist();
      return ["as", "c"].every((k) => WebAssembly.validate(readFileSync(new URL(`plait-${k}.${variant}.wasm`, dir!))));
    } catch {
      return false;
    }
  };
  const simd = valid("simd");
  const relaxedSimd = valid("relaxed");
  let threads = false;
  try {
    threads =
      typeof SharedArrayBuffer === "function" &&
      typeof Atomics === "object" &&
      new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {}
  const forced = readEnv("PLAIT_SIMD") || null;
  let variant: string | null = runtimeStarted() ? runtime().variant : null;
  let reason: string | null = null;
  let det: boolean | null = null;
  try {
    det = deterministic();
  } catch (e) {
    reason = message(e);
  }
  if (variant === null && det !== null) {
    try {
      variant = chooseVariant(readEnv("PLAIT_SIMD"), det);
    } catch (e) {
      reason = message(e);
    }
  }
  if (!simd || !threads) reason = `this runtime lacks WebAssembly ${!simd ? "SIMD" : "threads (shared memory)"}`;
  else if (!relaxedSimd && runtimeName() === "node" && variant === "simd") {
    reason = "relaxed SIMD off: Node < 22 validates it only with --experimental-wasm-relaxed-simd";
  }
  return {
    found: simd,
    usable: simd && threads && variant !== null,
    reason,
    simd,
    relaxedSimd,
    threads,
    kernels: { variant, forced, dir: dir ? decodeURIComponent((dir as URL).pathname) : null },
    deterministic: det,
    gemm: gemmInfo(),
  };
}

/**
 * The GEMM kernel choice: made only if the runtime already runs (envReport starts nothing), or
 * with `start` (the `plait env` command, after its report is taken). Before the runtime starts,
 * a PLAIT_GEMM_KERNEL value is still checked.
 */
function gemmInfo(start = false): EnvReport["wasm"]["gemm"] {
  const forced = readEnv("PLAIT_GEMM_KERNEL")?.trim() || null;
  try {
    if (!start && !runtimeStarted()) {
      if (forced && forced !== "auto") checkGemmKernelName(forced, "PLAIT_GEMM_KERNEL");
      return { kernel: null, forced, error: null };
    }
    return { kernel: gemmKernel(), forced, error: null };
  } catch (e) {
    return { kernel: null, forced, error: message(e) };
  }
}

function cpuInfo(): EnvReport["cpu"] {
  const cores = availableParallelism();
  const env = readEnv("PLAIT_THREADS");
  const started = runtimeStarted();
  const kernelThreads = started ? runtime().threads : env ? Number(env) : cores;
  const threadsFrom = started
    ? "the running runtime's"
    : env
      ? "PLAIT_THREADS"
      : "one per core; PLAIT_THREADS or configure({ threads }) sets it";
  let model: string | null = null;
  try {
    model = cpus()[0]?.model?.trim() || null;
  } catch {}
  return { model, cores, kernelThreads, threadsFrom };
}

function clusterInfo(): EnvReport["cluster"] {
  try {
    const e = detectEnvironment();
    return { found: true, usable: true, reason: describeEnvironment(e), name: e.name, environment: e };
  } catch (err) {
    const name = err instanceof ClusterEnvironmentError ? err.environment : null;
    return { found: name !== null, usable: false, reason: message(err), name, environment: null };
  }
}

function ffiInfo(): EnvReport["ffi"] {
  const reason = ffiUnavailable() ?? null;
  return {
    found: reason === null || !/did not load/.test(reason),
    usable: reason === null,
    reason,
    library: "koffi",
    version: reason === null ? (koffiVersion() ?? null) : null,
  };
}

function blasInfo(): EnvReport["blas"] {
  const s = blasStatus();
  let file: string | null = null;
  if (s.path?.startsWith("/")) {
    try {
      file = realpathSync(s.path);
    } catch {}
  }
  return { ...s, file };
}

function cudaInfo(): EnvReport["cuda"] {
  const c = probeCuda();
  if (c.cublas?.found && !c.usable) {
    c.cublas = { ...c.cublas, usable: false, reason: c.cublas.reason ?? "no CUDA device (see cuda)" };
  }
  return c as EnvReport["cuda"];
}

function ncclInfo(): EnvReport["nccl"] {
  const n = probeNccl();
  if (n.usable && !guard(probeCuda).usable) return { ...n, usable: false, reason: "no CUDA device (see cuda)" };
  return n as EnvReport["nccl"];
}

/** The report as text: one block per entry, the status first, details indented below. */
function gemmLine(g: EnvReport["wasm"]["gemm"]): string {
  if (g.error) return g.error;
  const k = g.kernel;
  if (!k) return g.forced ? `${g.forced} (PLAIT_GEMM_KERNEL)` : "timed at the first product";
  const timed = `${Object.entries(k.timings ?? {})
    .map(([name, rate]) => `${name} ${rate}`)
    .join(", ")} GFLOP/s in ${k.selectMs?.toFixed(1)} ms`;
  const how =
    k.by === "timed"
      ? k.settled === false
        ? `the first candidate: timings of ${timed} did not settle at optimized speed${k.retimed ? ", again at a later product" : "; timed again at a later product"}`
        : `fastest of ${timed}${k.retimed ? ", timed again at a later product" : ""}`
      : k.by === "forced"
        ? "PLAIT_GEMM_KERNEL"
        : "deterministic mode's fixed kernel";
  return `${k.name} on ${k.arch}, ${k.engine} (${how})`;
}

export function formatEnv(r: EnvReport): string {
  const out: string[] = [`plait ${r.plait.version ?? "(version unknown)"} environment`, ""];
  const block = (label: string, head: string, details: (string | false | null | undefined)[] = []) => {
    out.push(`${label.padEnd(9)}${head}`);
    for (const d of details) if (d) out.push(`${" ".repeat(11)}${d}`);
  };
  const status = (e: EnvEntry) => (e.usable ? "usable" : e.found ? "found, not usable" : "not found");
  const yes = (b: boolean) => (b ? "yes" : "no");
  const rt = r.runtime;
  block("runtime", `${rt.name} ${rt.version}${rt.v8 ? ` (V8 ${rt.v8})` : ""}, ${rt.platform} ${rt.arch}`);
  const w = r.wasm;
  block("wasm", `SIMD ${yes(w.simd)}, relaxed SIMD ${yes(w.relaxedSimd)}, threads ${yes(w.threads)}`, [
    `kernels: ${w.kernels.variant ?? "none"} build${w.kernels.forced ? ` (PLAIT_SIMD=${w.kernels.forced})` : ""}${w.kernels.dir ? ` from ${w.kernels.dir}` : ""}`,
    `gemm kernel: ${gemmLine(w.gemm)}`,
    `deterministic: ${w.deterministic === null ? "invalid setting" : w.deterministic ? "on (the same bits on Node, Deno and Bun at any thread count; no system BLAS)" : "off (configure({ deterministic: true }) or PLAIT_DETERMINISTIC=1 turns it on)"}`,
    w.reason,
  ]);
  const c = r.cpu;
  block("cpu", `${c.model ?? "unknown model"}, ${c.cores} cores`, [
    `kernel threads: ${c.kernelThreads} (${c.threadsFrom})`,
  ]);
  block("cluster", r.cluster.usable ? `${r.cluster.reason}` : `${status(r.cluster)}: ${r.cluster.reason}`);
  block("ffi", `${status(r.ffi)}${r.ffi.version ? `: koffi ${r.ffi.version}` : ""}`, [r.ffi.reason]);
  if (!r.ffi.usable) {
    // without an FFI no library can be looked at: say so once per entry, not as "not found"
    for (const name of ["blas", "mpi", "cuda", "nccl"] as const) {
      const e = r[name];
      block(name, e.reason?.startsWith("turned off") ? `off: ${e.reason}` : "not checked (no FFI, see ffi)");
    }
    out.push("", "matmul/linear run on the WASM kernels.");
    return `${out.join("\n")}\n`;
  }
  const b = r.blas;
  const kernel = b.corename ? ` (${b.corename} kernel)` : "";
  const blasHead = b.inUse
    ? `in use: ${b.vendor}${b.version ? ` ${b.version}` : ""}${kernel}`
    : b.mode === "off"
      ? "off"
      : status(b);
  block("blas", blasHead, [
    b.path && `${b.path}${b.file && b.file !== b.path ? ` → ${b.file}` : ""} (${b.via})`,
    b.config,
    b.inUse && `threads: ${b.threads ?? "library default"} now; each product sets the kernel thread count`,
    b.inUse && `f32 and f64 matmul/linear run on it (mode ${b.mode}: configure({ blas }) / PLAIT_BLAS)`,
    !b.inUse && `matmul/linear run on the WASM kernels: ${b.reason?.split("\n")[0]}`,
    ...(b.inUse ? [] : tried(b)),
  ]);
  const m = r.mpi;
  block("mpi", m.usable ? `usable: ${m.vendor} ${m.version ?? ""}`.trim() : status(m), [
    m.path && `${m.path} (${m.via})`,
    m.library,
    m.standard && `MPI standard ${m.standard}`,
    m.reason !== status(m) && m.reason,
    ...(m.found ? [] : tried(m)),
  ]);
  const cu = r.cuda;
  const d = cu.driver;
  block(
    "cuda",
    cu.found
      ? `${status(cu)}: runtime ${cu.runtimeVersion ?? "?"}, driver ${d?.version ?? "none"}, ${cu.devices ?? 0} devices`
      : status(cu),
    [
      cu.path && `libcudart: ${cu.path} (${cu.via})`,
      d && (d.version ? `driver: ${d.version} (${d.path})` : `driver: none: ${d.reason}`),
      ...(d && !d.found ? tried({ tried: d.tried, searched: d.searched }).map((l) => `  ${l}`) : []),
      cu.deviceError &&
        `devices: cudaGetDeviceCount returned ${cu.deviceError.code} (${cu.deviceError.name}: ${cu.deviceError.message})`,
      !cu.found && cu.reason,
      ...(cu.found ? [] : tried(cu)),
      cu.cublas &&
        (cu.cublas.found
          ? `cublas: ${cu.cublas.version ?? ""} ${cu.cublas.path}${cu.cublas.usable ? "" : ` (${cu.cublas.reason})`}`
          : `cublas: ${cu.cublas.reason}${cu.cublas.tried.length ? ` (tried ${cu.cublas.tried.map((t) => t.path).join(", ")})` : ""}`),
    ],
  );
  const n = r.nccl;
  block("nccl", n.usable ? `usable: ${n.version}` : status(n), [
    n.path && `${n.path} (${n.via})${n.version ? `, version ${n.version}` : ""}`,
    n.reason !== status(n) && n.reason,
    ...(n.found ? [] : tried(n)),
  ]);
  return `${out.join("\n")}\n`;
}

/** The paths tried, the folders searched and the install command of an entry not found. */
function tried(e: {
  tried?: readonly { path: string; via: string; error: string }[];
  searched?: readonly string[];
  install?: string;
}): string[] {
  const lines = (e.tried ?? []).map((t) => `tried ${t.path} (${t.via}): ${t.error}`);
  if (e.searched?.length) lines.push(`searched, no match: ${e.searched.join(", ")}`);
  if (e.install) lines.push(`install: ${e.install}`);
  return lines;
}

const ENV_FLAGS = {
  json: { type: "boolean", help: "print the report as one JSON object" },
  help: { type: "boolean", help: "show this help" },
} as const satisfies Record<string, FlagSpec>;

/** `plait env [--json]`. */
export async function env(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, ENV_FLAGS);
  if (flags.help) {
    process.stdout.write(`usage: plait env [--json]\n${flagHelp(ENV_FLAGS)}\n`);
    return;
  }
  const report = envReport();
  // The command runs on its own, so once the report is taken it may start the runtime and make
  // the timed GEMM kernel choice for the report to show.
  if (report.wasm.usable && !report.wasm.gemm.error) report.wasm.gemm = gemmInfo(true);
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatEnv(report));
}
