// The system BLAS path (ffi/blas.ts) against the WASM GEMM (core.matmul) and a float64 loop, with
// the bound of test/gemm.test.ts: |C − ref| ≤ 2·(k + 4)·u·Σ|terms| (+ k·tiny). Also: the operands
// reach C as pointers into plait's memory (zero copy), the thread count follows the kernel threads,
// matmul/linear take the BLAS by default and the WASM kernels with PLAIT_BLAS=off, importing plait
// loads no native code, and each kind of bad library or tensor gets an error naming it.
// Skipped (and named by test/setup/native.ts) where no BLAS is installed, unless PLAIT_REQUIRE_BLAS=1.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { BLAS_SPEC, blasFor, blasMatmul, blasStatus } from "../ffi/blas.ts";
import { LibraryError, openLibrary } from "../ffi/find.ts";
import { addressOf, openNative } from "../ffi/native.ts";
import { cast } from "../src/core/cast.ts";
import { matmul as wasmMatmul } from "../src/core/gemm.ts";
import { configure, linear, matmul, runtime, scope, type Tensor, tensor, valueAndGrad } from "../src/index.ts";
import { sum } from "../src/ops/reduce.ts";
import { expectClose, LAYOUTS, random, reference } from "./gemm-reference.ts";
import { BLAS_INSTALL, skipBlas } from "./native.ts";

// auto mode whatever PLAIT_BLAS says in the shell (the option wins over the variable)
configure({ threads: 2, blas: "auto" });

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs test/fixtures/blas-child.mjs `what` with env changes; returns the JSON it prints. */
function child(what: string, env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [join(ROOT, "test/fixtures/blas-child.mjs"), what], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

afterEach(() => configure({ blas: "auto" }));

describe.skipIf(skipBlas())("BLAS GEMM: the contract of core.matmul", () => {
  it("is found and in use by default (auto), with a path, a version and f32/f64", () => {
    const s = blasStatus();
    expect(s.inUse, s.reason ?? "").toBe(true);
    expect(s.mode).toBe("auto");
    expect(s.path).toMatch(/lib.*\.so/);
    expect(s.dtypes).toEqual(["f32", "f64"]);
  });

  for (const dtype of ["f32", "f64"] as const) {
    it(`${dtype}: BLAS, WASM and the float64 loop agree, all layouts, edges of every size`, () => {
      const tails = [1, 3, 5, 17];
      const shapes = [
        ...tails.flatMap((m) => tails.flatMap((n) => tails.map((k) => [m, n, k]))),
        [64, 256, 784], // the demo's layer
        [130, 777, 400],
        [1023, 3, 5],
        [3, 5, 1023],
      ];
      for (const [transA, transB] of LAYOUTS) {
        for (const [m, n, k] of shapes) {
          scope(() => {
            const a = random(transA ? [k, m] : [m, k], dtype, m * 7 + k);
            const b = random(transB ? [n, k] : [k, n], dtype, n * 5 + k);
            const what = `${dtype} ${m}×${n}×${k} transA=${transA} transB=${transB}`;
            const ref = reference(a, b, { transA, transB });
            expectClose(`${what} BLAS`, blasMatmul(a, b, { transA, transB }), ref);
            expectClose(`${what} WASM`, wasmMatmul(a, b, { transA, transB }), ref);
          });
        }
      }
    });

    it(`${dtype}: bias, out, accumulate and bias + accumulate, all layouts, k = 0 included`, () => {
      for (const [transA, transB] of LAYOUTS) {
        for (const [m, n, k] of [
          [1, 1, 1],
          [5, 17, 3],
          [17, 5, 0],
          [67, 129, 400],
          [600, 300, 64], // large enough that the bias add splits across the pool
        ]) {
          scope(() => {
            const a = random(transA ? [k, m] : [m, k], dtype, m);
            const b = random(transB ? [n, k] : [k, n], dtype, n);
            const bias = random([n], dtype, k + 7);
            const what = `${dtype} ${m}×${n}×${k} ${transA} ${transB}`;
            expectClose(
              `${what} bias`,
              blasMatmul(a, b, { transA, transB, bias }),
              reference(a, b, { transA, transB, bias }),
            );
            const out = random([m, n], dtype, 99);
            const c0 = out.toArray();
            expect(blasMatmul(a, b, { transA, transB, out, accumulate: true })).toBe(out);
            expectClose(`${what} accumulate`, out, reference(a, b, { transA, transB }, c0));
            const c1 = out.toArray();
            blasMatmul(a, b, { transA, transB, bias, out, accumulate: true });
            expectClose(`${what} bias+accumulate`, out, reference(a, b, { transA, transB, bias }, c1));
            blasMatmul(a, b, { transA, transB, out });
            expectClose(`${what} out`, out, reference(a, b, { transA, transB }));
          });
        }
      }
    });

    it(`${dtype}: NaN and ±inf propagate as in the WASM GEMM; m = 0 and n = 0 give empty products`, () =>
      scope(() => {
        const a = random([8, 6], dtype, 3);
        const b = random([6, 9], dtype, 4);
        const av = a.data();
        av[0] = Number.NaN; // row 0 of C is NaN
        av[6 * 3 + 2] = Number.POSITIVE_INFINITY; // row 3 is ±inf (b has no zeros)
        const blas = blasMatmul(a, b).toArray();
        const wasm = wasmMatmul(a, b).toArray();
        expect(blas.map(String)).toEqual(wasm.map((v, i) => (Number.isFinite(v) ? String(blas[i]) : String(v))));
        expect(blas.slice(0, 9).every(Number.isNaN)).toBe(true);
        expect(blasMatmul(random([0, 3], dtype, 1), random([3, 4], dtype, 2)).shape).toEqual([0, 4]);
        expect(blasMatmul(random([2, 3], dtype, 1), random([3, 0], dtype, 2)).shape).toEqual([2, 0]);
      }));
  }

  it("matmul and linear (the differentiable ops) use it for f32/f64, gradients included; half stays on WASM", () =>
    scope(() => {
      expect(blasFor("f32")).toBe(blasMatmul);
      expect(blasFor("f64")).toBe(blasMatmul);
      expect(blasFor("bf16")).toBeUndefined();
      expect(blasFor("f16")).toBeUndefined();
      const x = random([33, 70], "f32", 1);
      const w = random([70, 20], "f32", 2);
      const b = random([20], "f32", 3);
      expectClose("linear", linear(x, w, b), reference(x, w, { bias: b }));
      const { grads } = valueAndGrad((p: any) => sum(matmul(x, p.w)))({ w }, undefined);
      // d/dw Σ(x·w) = xᵀ·1: column sums of x, repeated in every column
      const gw = (grads as { w: Tensor }).w.toArray();
      const xv = x.toArray();
      for (let i = 0; i < 70; i++) {
        let s = 0;
        for (let r = 0; r < 33; r++) s += xv[r * 70 + i];
        for (let j = 0; j < 20; j++) expect(Math.abs(gw[i * 20 + j] - s)).toBeLessThan(1e-4);
      }
    }));

  for (const half of ["f16", "bf16"] as const) {
    it(`a product with a ${half} operand runs on it as f32 holding the ${half} values: the bits of the BLAS on operands cast to ${half} and widened, gradients included`, () =>
      scope(() => {
        // reference: the path before operands were rounded through the half dtype in one pass
        // (cast to half, widened, then the BLAS), op by op
        const wide = (t: Tensor) => cast(cast(t, half), "f32");
        const x = random([33, 70], "f32", 11);
        const w = cast(random([70, 20], "f32", 12), half);
        const v = random([20, 1], "f32", 13);
        const f = (p: any) => sum(matmul(matmul(p.x, p.w), v));
        const { grads } = valueAndGrad(f)({ x, w }, undefined);
        const { x: gx, w: gw } = grads as { x: Tensor; w: Tensor };
        expect([gx.dtype, gw.dtype]).toEqual(["f32", "f32"]);
        // dL/d(x·w) = 1·vᵀ: every row is vᵀ, exactly
        const vv = v.toArray();
        const g = tensor(
          Array.from({ length: 33 * 20 }, (_, i) => vv[i % 20]),
          [33, 20],
        );
        const bits = (t: Tensor) => [...new Uint32Array(t.data().buffer, t.data().byteOffset, t.size)];
        expect(bits(matmul(x, w))).toEqual(bits(blasMatmul(wide(x), cast(w, "f32"))));
        expect(bits(gx)).toEqual(bits(blasMatmul(wide(g), cast(w, "f32"), { transB: true })));
        expect(bits(gw)).toEqual(bits(blasMatmul(wide(x), wide(g), { transA: true })));
        // one operand a constant: the operand only the other's gradient reads is freed after the
        // forward, and the gradient that remains is the same
        const onlyW = valueAndGrad((p: any) => sum(matmul(matmul(x, p.w), v)))({ w }, undefined);
        expect(bits((onlyW.grads as { w: Tensor }).w)).toEqual(bits(gw));
        const onlyX = valueAndGrad((p: any) => sum(matmul(matmul(p.x, w), v)))({ x }, undefined);
        expect(bits((onlyX.grads as { x: Tensor }).x)).toEqual(bits(gx));
        // and the rounding mattered: x·w on unrounded x differs
        expect(bits(matmul(x, w))).not.toEqual(bits(blasMatmul(x, cast(w, "f32"))));
      }));
  }

  it("an f16 product's output gradient beyond f16's range turns into inf on the BLAS as on the WASM GEMM (what a loss scaler watches)", () =>
    scope(() => {
      const x = tensor([[1, 2, 3]]);
      const w = tensor([[1], [1], [1]], undefined, { dtype: "f16" });
      const gradW = (lossScale: number) =>
        (
          valueAndGrad((p: any) => sum(matmul(p.x, p.w)))({ x, w }, undefined, { computeDType: "f16", lossScale })
            .grads as { w: Tensor }
        ).w.toArray();
      for (const blas of ["auto", "off"] as const) {
        configure({ blas });
        expect(blasFor("f32") === undefined).toBe(blas === "off");
        // 65519 rounds to 65504 (the largest f16), 65520 to inf: the seed is rounded like any G
        expect(gradW(65519)).toEqual([65504, 2 * 65504, 3 * 65504]);
        expect(gradW(65520)).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
      }
    }));

  it("configure({ blas: 'off' }) sends matmul to the WASM kernels (bit-identical to core.matmul); 'auto' brings it back", () =>
    scope(() => {
      const a = random([40, 300], "f32", 5);
      const b = random([300, 30], "f32", 6);
      configure({ blas: "off" });
      expect(blasFor("f32")).toBeUndefined();
      expect(blasStatus()).toMatchObject({ inUse: false, mode: "off" });
      expect(blasStatus().reason).toMatch(/turned off/);
      expect([...matmul(a, b).data()]).toEqual([...wasmMatmul(a, b).data()]);
      configure({ blas: "auto" });
      expect(blasFor("f32")).toBe(blasMatmul);
    }));

  it("passes pointers into the shared WebAssembly.Memory: the address C receives is the memory's base + tensor.ptr", () =>
    scope(() => {
      const libc = openNative("libc.so.6");
      const memchr = libc.func("uintptr_t memchr(const void *s, int c, size_t n)");
      const { memory } = runtime();
      const base = addressOf(new Uint8Array(memory.buffer, 0, 1));
      for (const t of [random([5, 7], "f32", 1), random([300, 300], "f32", 2), random([3, 3], "f64", 3)]) {
        const bytes = new Uint8Array(memory.buffer, t.ptr, t.byteLength);
        bytes.fill(1);
        bytes[bytes.length - 1] = 7; // memchr finds the last byte: C read the tensor in place
        const view = new (t.dtype === "f32" ? Float32Array : Float64Array)(memory.buffer, t.ptr, t.size);
        expect(BigInt(memchr(view, 7, t.byteLength))).toBe(base + BigInt(t.ptr + t.byteLength - 1));
      }
    }));

  it("runs on the kernel thread count (configure threads: 2), and on fewer with the threads option", () =>
    scope(() => {
      const a = random([256, 256], "f32", 1);
      blasMatmul(a, a);
      expect(blasStatus().threads).toBe(runtime().threads);
      expect(runtime().threads).toBe(2);
      blasMatmul(a, a, { threads: 1 });
      expect(blasStatus().threads).toBe(1);
    }));

  it("PLAIT_THREADS sets it in a process of its own (1 and 2)", () => {
    for (const threads of ["1", "2"]) {
      expect(child("status", { PLAIT_THREADS: threads, PLAIT_BLAS: undefined }).threads).toBe(Number(threads));
    }
  });
});

describe.skipIf(skipBlas())("loading", () => {
  it("importing plait loads neither koffi nor a library; the first f32 matmul does", () => {
    const r = child("load", { PLAIT_BLAS: undefined });
    expect(r.afterImport).toEqual({ koffi: false, blas: false });
    expect(r.afterOps).toEqual({ koffi: false, blas: false });
    expect(r.afterMatmul).toEqual({ koffi: true, blas: true });
    expect(r.y).toEqual([7, 10, 15, 22]);
  });

  it("PLAIT_BLAS=off: matmul runs on the WASM kernels and nothing native is ever loaded", () => {
    const r = child("load", { PLAIT_BLAS: "off" });
    expect(r.afterMatmul).toEqual({ koffi: false, blas: false });
    expect(r.y).toEqual([7, 10, 15, 22]);
  });

  it("PLAIT_BLAS=<path of the library found> loads that one", () => {
    const path = blasStatus().path!;
    expect(child("status", { PLAIT_BLAS: path })).toMatchObject({ path, via: "PLAIT_BLAS", inUse: true });
  });

  it("PLAIT_BLAS=<missing file>: the first matmul fails, naming the path and the variable", () => {
    expect(() => child("status", { PLAIT_BLAS: "/nonexistent/libopenblas.so.0" })).toThrow(
      /plait: BLAS: \/nonexistent\/libopenblas\.so\.0 \(from PLAIT_BLAS\) cannot be used/,
    );
  });
});

describe.skipIf(skipBlas())("bad input", () => {
  const dir = mkdtempSync(join(tmpdir(), "plait-blas-"));
  const a = () => tensor([[1, 2]]);
  const b = () => tensor([[3], [4]]);

  /** The error matmul throws with configure({ blas }) set to `path`. */
  function errorFor(path: string): LibraryError {
    configure({ blas: path });
    try {
      scope(() => matmul(a(), b()));
    } catch (e) {
      expect(e).toBeInstanceOf(LibraryError);
      return e as LibraryError;
    }
    throw new Error(`matmul with blas=${path} did not throw`);
  }

  it("a missing file: names the library, the path, where the path came from, and how to install", () => {
    const e = errorFor("/nonexistent/libopenblas.so.0");
    expect(e.message).toContain("plait: BLAS: /nonexistent/libopenblas.so.0 (from configure({ blas })) cannot be used");
    expect(e.message).toContain("/nonexistent/libopenblas.so.0 (configure({ blas })): no such file");
    expect(e.message).toContain(`install: apt-get install libopenblas0-pthread`);
  });

  it("a file that is not a library: the loader's reason, with the path", () => {
    const path = join(dir, "not-a-library.so");
    writeFileSync(path, "plain text, not ELF\n");
    expect(errorFor(path).message).toMatch(
      new RegExp(`${path} \\(configure\\(\\{ blas \\}\\)\\): .*(invalid ELF header|file too short)`),
    );
  });

  it("a library without the CBLAS symbols: names each missing symbol", () => {
    expect(errorFor("libc.so.6").message).toContain(
      "libc.so.6 (configure({ blas })): loads, but lacks symbols cblas_sgemm, cblas_dgemm",
    );
  });

  // Two fake BLAS libraries built here with the C compiler: one that returns a wrong product
  // (what a library with another ABI gives), one that reports a 64-bit-integer build.
  const cc = spawnSync("cc", ["--version"]).status === 0;
  it.skipIf(!cc)("a wrong ABI (a product that comes out wrong) and a 64-bit-integer OpenBLAS: refused, named", () => {
    const build = (name: string, config: string) => {
      const c = join(dir, `${name}.c`);
      writeFileSync(
        c,
        `void cblas_sgemm(void) {}\nvoid cblas_dgemm(void) {}\nconst char *openblas_get_config(void) { return "${config}"; }\n`,
      );
      const so = join(dir, `${name}.so`);
      execFileSync("cc", ["-shared", "-fPIC", "-o", so, c]);
      return so;
    };
    const wrong = build("libwrong", "FakeBLAS 1.0");
    expect(errorFor(wrong).message).toMatch(
      /libwrong\.so \(configure\(\{ blas \}\)\): gave \[0, 0, 0, 0\] for a 2×3·3×2 product whose result is \[58, 64, 139, 154\] \(wrong ABI\?\)/,
    );
    const ilp64 = build("libilp64", "OpenBLAS 0.3.21 USE64BITINT DYNAMIC_ARCH");
    expect(errorFor(ilp64).message).toContain("is built with 64-bit integers");
  });

  it("auto mode with nothing found: not-found, every candidate and its reason, the install command", () => {
    const spec = { ...BLAS_SPEC, sonames: ["libplait-none.so.9"], pattern: /^libplait-none\.so/ };
    try {
      openLibrary(spec, { kind: "auto" }, ["cblas_sgemm"]);
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(LibraryError);
      expect((e as LibraryError).kind).toBe("missing");
      expect((e as Error).message).toMatch(
        /plait: BLAS: not found\ntried:\n {2}libplait-none\.so\.9 \(dynamic loader search\): .*cannot open shared object file/,
      );
      expect((e as Error).message).toContain("install: apt-get install libopenblas0-pthread");
    }
    expect(BLAS_INSTALL).toMatch(/libopenblas0-pthread/);
  });

  it("a tensor outside plait's WebAssembly.Memory is refused, named, before any native call", () =>
    scope(() => {
      const real = tensor([[1, 2]]);
      const fake = Object.create(real) as Tensor; // a Tensor whose bytes lie past the memory's end
      Object.defineProperty(fake, "ptr", { get: () => runtime().memory.buffer.byteLength + 64 });
      expect(() => blasMatmul(fake, b())).toThrow(
        /matmul on the BLAS \(.*\): argument a \(f32\[1, 2\]\) at byte \d+ lies outside plait's WebAssembly.Memory/,
      );
    }));
});
