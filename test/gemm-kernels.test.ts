// The f32 GEMM's kernel variants (kernels/c/gemm_micro_f32_*.c) and their choice
// (src/core/gemmKernel.ts): each kernel, forced by name, against the float64 loop of
// test/gemm-reference.ts for every layout, bias, accumulate and edge size and the three input
// types; the same bits from every kernel and thread count; the CPU family detection; and
// PLAIT_GEMM_KERNEL and deterministic mode in child processes (they act once per process).
import { spawnSync } from "node:child_process";
import { arch } from "node:process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { matmul } from "../src/core/gemm.ts";
import { GEMM_KERNELS, gemmKernel, setGemmKernel } from "../src/core/gemmKernel.ts";
import { configure, runtime, scope, type Tensor, tensor } from "../src/index.ts";
import { expectClose, type InDType, LAYOUTS, random, reference } from "./gemm-reference.ts";

configure({ threads: 2 });
afterAll(() => setGemmKernel(undefined));

const root = fileURLToPath(new URL("..", import.meta.url));
const NAMES = GEMM_KERNELS.map((k) => k.name);

/** m, n, k around every tile edge (mr 4–8, nr 8/16), both k blocks (kc 384) and an A block (mc 120). */
const SHAPES = [
  [1, 1, 1],
  [3, 7, 5],
  [9, 17, 8],
  [13, 33, 31],
  [41, 23, 390],
  [127, 50, 12],
];

describe("every kernel against the float64 loop", () => {
  for (const name of NAMES) {
    it(`${name}: f32, bf16, f16 × NN/NT/TN/TT × edge sizes, with bias and accumulate`, () => {
      setGemmKernel(name);
      for (const dtype of ["f32", "bf16", "f16"] as InDType[]) {
        for (const [transA, transB] of LAYOUTS) {
          for (const [m, n, k] of SHAPES) {
            scope(() => {
              const a = random(transA ? [k, m] : [m, k], dtype, m + 3 * n);
              const b = random(transB ? [n, k] : [k, n], dtype, n + 5 * k);
              const bias = random([n], "f32", k);
              const what = `${name} ${dtype} ${m}×${n}×${k} transA=${transA} transB=${transB}`;
              expectClose(what, matmul(a, b, { transA, transB }), reference(a, b, { transA, transB }));
              const out = random([m, n], "f32", 11);
              const c0 = out.toArray();
              matmul(a, b, { transA, transB, bias, out, accumulate: true });
              expectClose(`${what} bias + accumulate`, out, reference(a, b, { transA, transB, bias }, c0));
            });
          }
        }
      }
      expect(gemmKernel().name).toBe(name);
    });
  }
});

describe("packing scratch", () => {
  // gemm_drive packs an A block of block(m, MC, mr) rows and a B block of block(n, NC, nr)
  // columns, kc deep, f32 (gemm_drive.c's `block`; the blocks round up to the kernel's own tile).
  // matmul sizes each thread's slice of scratch by gemm_f32_scratch_bytes, whichever kernel runs:
  // a slice too small lets one thread's packing spill into the next thread's, or past the block.
  const [KC, MC, NC] = [384, 120, 768]; // kernels/c/gemm_f32.h
  const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;
  const block = (size: number, max: number, unit: number) =>
    size <= max ? roundUp(size, unit) : roundUp(Math.ceil(size / Math.ceil(size / max)), unit);
  it("gemm_f32_scratch_bytes covers every kernel's blocks", () => {
    const scratch = runtime().k.c.gemm_f32_scratch_bytes as (m: number, n: number, k: number) => number;
    for (let m = 1; m <= 300; m++) {
      for (let n = 1; n <= 300; n += 7) {
        for (const k of [1, 100, 500]) {
          const have = scratch(m, n, k);
          for (const { name, mr, nr } of GEMM_KERNELS) {
            const need = (block(m, MC, mr) + block(n, NC, nr)) * block(k, KC, 1) * 4 + 64;
            if (have < need) expect.fail(`${name}, ${m}×${n}×${k}: scratch ${have} bytes, packing needs ${need}`);
          }
        }
      }
    }
  });
});

/** The bytes of C for one product, with kernel `name` on `threads` threads. */
function product(name: string, threads: number, a: Tensor, b: Tensor, bias: Tensor, transA: boolean, transB: boolean) {
  setGemmKernel(name);
  const c = matmul(a, b, { transA, transB, bias, threads });
  return Buffer.from(c.data().slice().buffer);
}

describe("the same bits", () => {
  // Every kernel sums each element in the same order (p within a kc block, then bias, then C),
  // so the tile, the loading scheme and the thread split change no bit. In the relaxed build
  // every kernel fuses (or not) the same multiply-adds, so it holds there too.
  it(`from every kernel and from 1 and 2 threads (${runtime().variant} build)`, () =>
    scope(() => {
      for (const [m, n, k, transA, transB] of [
        [600, 40, 400, false, false], // split by rows; two k blocks
        [130, 777, 100, true, true], // split by columns
        [67, 129, 33, false, true],
      ] as const) {
        const a = random(transA ? [k, m] : [m, k], "f32", m);
        const b = random(transB ? [n, k] : [k, n], "f32", n);
        const bias = random([n], "f32", k);
        const want = product(NAMES[0], 1, a, b, bias, transA, transB);
        for (const name of NAMES) {
          for (const threads of [1, 2]) {
            const got = product(name, threads, a, b, bias, transA, transB);
            expect(got.equals(want), `${name} on ${threads} threads, ${m}×${n}×${k}`).toBe(true);
          }
        }
      }
    }));
});

describe("kernel choice", () => {
  it("tells x86 from ARM by the sign of inf − inf's NaN", () => {
    const negative = runtime().k.c.gemm_default_nan_negative(Number.POSITIVE_INFINITY);
    if (arch === "x64" || arch === "ia32") expect(negative).toBe(1);
    else if (arch === "arm64" || arch === "arm") expect(negative).toBe(0);
    expect(setGemmKernel(NAMES[0])?.arch).toBe(negative === 1 ? "x86" : "arm");
  });

  it("knows whether the build's multiply-add fuses, as a product that tells them apart shows", () =>
    scope(() => {
      // (1 + 2^-12)² − (1 + 2^-11) is 2^-24 exactly when rounded once, 0 when the product is rounded first.
      const a = tensor([-(1 + 2 ** -11), 1 + 2 ** -12], [1, 2]);
      const b = tensor([1, 1 + 2 ** -12], [2, 1]);
      for (const name of NAMES) {
        const { fused } = setGemmKernel(name)!;
        const c = matmul(a, b).toArray()[0];
        expect(c === 2 ** -24 || c === 0, `${name}: ${c}`).toBe(true);
        expect(fused, name).toBe(c !== 0);
        if (runtime().variant === "simd") expect(fused).toBe(false);
      }
    }));

  it("times the candidates at the first product, again later if that did not settle, then holds", async () => {
    setGemmKernel(undefined);
    const choice = gemmKernel();
    expect(choice.by).toBe("timed");
    expect(NAMES).toContain(choice.name);
    expect(Object.keys(choice.timings ?? {})).toContain(choice.name);
    for (const rate of Object.values(choice.timings ?? {})) expect(rate).toBeGreaterThan(0);
    expect(choice.retimed).toBeUndefined();
    expect(gemmKernel()).toBe(choice); // within RETRY_AFTER_MS (100 ms): the same choice
    // An unsettled first timing runs again at a call ≥ 100 ms later, up to three times; then
    // (or at once, if it settled) the choice holds.
    let now = choice;
    for (let i = 0; i < 4 && choice.settled === false && now.retimed !== true; i++) {
      await new Promise((r) => setTimeout(r, 120));
      now = gemmKernel();
    }
    if (choice.settled === false) {
      expect(now.retimed).toBe(true);
      expect(Object.keys(now.timings ?? {})).toEqual(Object.keys(choice.timings ?? {}));
      expect(now.name).toBe(now.settled ? now.name : Object.keys(choice.timings ?? {})[0]);
    } else {
      expect(now).toBe(choice);
    }
    await new Promise((r) => setTimeout(r, 120));
    expect(gemmKernel()).toBe(now);
  });

  it("orders the candidates for the engine: V8 on Node, V8 with explicit bounds checks on Deno, JavaScriptCore on Bun", () => {
    // Each engine times its own three candidates (src/core/gemmKernel.ts, CANDIDATES); the
    // choice is one of them, and the product is right whichever it is.
    const runs: [string, string[], string][] = [
      [process.execPath, process.execArgv.filter((f) => f.includes("relaxed")), "v8"],
      [`${root}node_modules/.bin/deno`, ["run", "--allow-read", "--allow-env", "--allow-sys"], "v8-bounds-checked"],
      [`${root}node_modules/.bin/bun`, [], "jsc"],
    ];
    const seen = new Map<string, string[]>();
    for (const [cmd, args, engine] of runs) {
      const r = spawnSync(cmd, [...args, fileURLToPath(new URL("fixtures/gemm-kernel-child.mjs", import.meta.url))], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, PLAIT_GEMM_KERNEL: "", PLAIT_DETERMINISTIC: "", PLAIT_THREADS: "1" },
      });
      expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      expect(out).toMatchObject({ by: "timed", c0: 8, engine });
      expect(out.candidates).toHaveLength(3);
      expect(out.candidates).toContain(out.name);
      seen.set(engine, out.candidates);
    }
    if (arch === "x64") {
      // Deno's bounds checks cost a compare and branch per load: its list leads with the splat
      // scheme (one A load per depth step), Node's with the broadcast loads.
      expect(seen.get("v8-bounds-checked")![0]).toMatch(/-splat$/);
      expect(seen.get("v8")![0]).toMatch(/-loadsplat$/);
    }
  });

  it("setGemmKernel rejects an unknown name, listing the kernels", () => {
    expect(() => setGemmKernel("3x3-magic")).toThrow(
      new RegExp(`setGemmKernel\\(name\\) must name a GEMM kernel \\(${NAMES.join(", ")}, or auto\\), got "3x3-magic"`),
    );
  });

  /** test/fixtures/gemm-kernel-child.mjs in a process of its own, with `env`. */
  const child = (env: Record<string, string>, arg = "") =>
    spawnSync(
      process.execPath,
      [
        ...process.execArgv.filter((f) => f.includes("relaxed")),
        fileURLToPath(new URL("fixtures/gemm-kernel-child.mjs", import.meta.url)),
        arg,
      ],
      { cwd: root, encoding: "utf8", env: { ...process.env, ...env } },
    );

  it("PLAIT_GEMM_KERNEL forces a kernel; an unknown name fails the first product, listing the kernels", () => {
    for (const name of ["4x16-splat", "6x8-loadsplat"]) {
      const r = child({ PLAIT_GEMM_KERNEL: name, PLAIT_DETERMINISTIC: "" });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ name, by: "forced", c0: 8 });
    }
    const bad = child({ PLAIT_GEMM_KERNEL: "4x9", PLAIT_DETERMINISTIC: "" });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain(
      `plait: PLAIT_GEMM_KERNEL must name a GEMM kernel (${NAMES.join(", ")}, or auto), got "4x9"`,
    );
  });

  it("deterministic mode runs the fixed kernel, not the timed choice", () => {
    const env = { PLAIT_GEMM_KERNEL: "", PLAIT_DETERMINISTIC: "", PLAIT_SIMD: "" };
    for (const [arg, extra] of [
      ["configure", {}],
      ["", { PLAIT_DETERMINISTIC: "1" }],
    ] as const) {
      const r = child({ ...env, ...extra }, arg);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ name: "4x8-loadsplat", by: "deterministic", c0: 8 });
    }
    const timed = child(env);
    expect(timed.status, timed.stderr).toBe(0);
    expect(JSON.parse(timed.stdout).by).toBe("timed");
  });

  it("plait env shows the choice (timed, or forced by PLAIT_GEMM_KERNEL), and names a bad value", () => {
    const env = (vars: Record<string, string>) => {
      const r = spawnSync(process.execPath, [`${root}dist/src/cli/main.js`, "env", "--json"], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, PLAIT_DETERMINISTIC: "", PLAIT_SIMD: "simd", ...vars },
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout).wasm.gemm;
    };
    const timed = env({ PLAIT_GEMM_KERNEL: "" });
    expect(timed.kernel.by).toBe("timed");
    expect(NAMES).toContain(timed.kernel.name);
    expect(env({ PLAIT_GEMM_KERNEL: "5x8-splat" }).kernel).toMatchObject({ name: "5x8-splat", by: "forced" });
    expect(env({ PLAIT_GEMM_KERNEL: "9x9" }).error).toMatch(/PLAIT_GEMM_KERNEL must name a GEMM kernel .*got "9x9"/);
    // The text report: the kernel, the CPU family, the engine and how it was chosen.
    const text = spawnSync(process.execPath, [`${root}dist/src/cli/main.js`, "env"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, PLAIT_DETERMINISTIC: "", PLAIT_SIMD: "simd", PLAIT_GEMM_KERNEL: "" },
    });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /gemm kernel: \d+x\d+-\w+ on (x86|arm), v8 \((fastest of|the first candidate: timings of) \S+ [\d.]+,/,
    );
  });
});
