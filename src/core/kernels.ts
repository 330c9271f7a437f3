import { existsSync, readFileSync } from "node:fs";
import type { KernelModules } from "./instance.js";

/** Which build of the kernel modules runs: plain SIMD128 or relaxed SIMD (fused multiply-add). */
export type KernelVariant = "simd" | "relaxed";

let kernelDir: URL | undefined;

/**
 * The package's kernels/dist/, found once from this file: two folders up when Deno or Bun run the
 * TypeScript source (src/core/), three from the build Node runs (dist/src/core/).
 */
export function kernelDist(): URL {
  if (kernelDir) return kernelDir;
  const tried: string[] = [];
  for (const up of ["../../", "../../../"]) {
    const dir = new URL(`${up}kernels/dist/`, import.meta.url);
    if (existsSync(new URL("plait-as.simd.wasm", dir))) {
      kernelDir = dir;
      return dir;
    }
    tried.push(dir.href);
  }
  throw new Error(`plait: kernel modules not found; looked in ${tried.join(" and ")}`);
}

function readKernel(name: string, variant: KernelVariant): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(new URL(`plait-${name}.${variant}.wasm`, kernelDist())));
}

/**
 * Picks the variant: `PLAIT_SIMD=simd|relaxed` forces one; otherwise relaxed when this runtime
 * validates it (Deno, Bun, Node ≥ 22; Node 20 only with --experimental-wasm-relaxed-simd).
 * Deterministic mode always takes the plain build: relaxed_madd may or may not fuse (V8 fuses on
 * x86 with FMA, JavaScriptCore does not), so its bits differ between runtimes.
 */
export function chooseVariant(forced = readEnv("PLAIT_SIMD"), deterministic = false): KernelVariant {
  if (deterministic) {
    if (forced === "relaxed") {
      throw new Error(
        "plait: PLAIT_SIMD=relaxed conflicts with deterministic mode (configure({ deterministic: true }) or PLAIT_DETERMINISTIC): it runs the plain SIMD build; unset PLAIT_SIMD or turn deterministic off",
      );
    }
    if (forced !== undefined && forced !== "" && forced !== "simd") {
      throw new TypeError(`plait: PLAIT_SIMD must be "simd" or "relaxed", got ${JSON.stringify(forced)}`);
    }
    return "simd";
  }
  const relaxedOk =
    WebAssembly.validate(readKernel("as", "relaxed")) && WebAssembly.validate(readKernel("c", "relaxed"));
  if (forced === undefined || forced === "") return relaxedOk ? "relaxed" : "simd";
  if (forced !== "simd" && forced !== "relaxed") {
    throw new TypeError(`plait: PLAIT_SIMD must be "simd" or "relaxed", got ${JSON.stringify(forced)}`);
  }
  if (forced === "relaxed" && !relaxedOk) {
    throw new Error("plait: PLAIT_SIMD=relaxed, but this runtime does not validate relaxed-SIMD WebAssembly");
  }
  return forced;
}

export function compileKernels(variant: KernelVariant): KernelModules {
  return { as: new WebAssembly.Module(readKernel("as", variant)), c: new WebAssembly.Module(readKernel("c", variant)) };
}

/** Reads an environment variable on Node, Deno and Bun alike. */
export function readEnv(name: string): string | undefined {
  return (globalThis as any).process?.env?.[name];
}
