// matmul (the GEMM kernels) against a float64 triple loop, for every layout (NN, NT, TN, TT),
// bias, accumulate, every dtype pair, sizes that hit every register-tile, panel and cache-block
// edge and the thread split, edge values (NaN, ±inf, ±0, subnormals, huge), and bad arguments.
// The relaxed-SIMD build is checked in a child process (Node 20 needs a flag to validate it).
//
// Error bound, per element: |C − ref| ≤ 2·(k + 4)·u·Σ_p |a_ip·b_pj| (+ |bias_j| + |C0_ij|) + k·tiny,
// u the unit roundoff of the output (2^-24 for f32, 2^-53 for f64) and tiny its smallest
// subnormal. A length-k sum has error at most γ_k·Σ|terms| (Higham, Accuracy and Stability,
// §3.1); the kc-blocking, bias and C0 add a few roundings more, and the factor 2 leaves room.
// bf16 and f16 inputs widen to f32 exactly and their products are exact in f32, so the same
// bound holds. A product term dropped or counted twice (|a_ip·b_pj| ≈ Σ/k) exceeds it for the k here.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { matmul } from "../src/core/gemm.ts";
import { configure, scope, type Tensor, tensor, zeros } from "../src/index.ts";
import { expectClose, type InDType, LAYOUTS, OUT, random, reference, rng } from "./gemm-reference.ts";

configure({ threads: 2 }); // products above GEMM_MIN_MACS_PER_THREAD (src/core/gemm.ts) then split over two threads

/** Builds a and b for an m×n×k product in the given layout and checks matmul against the loop. */
function checkProduct(dtype: InDType, m: number, n: number, k: number, transA: boolean, transB: boolean, seed = 1) {
  scope(() => {
    const a = random(transA ? [k, m] : [m, k], dtype, seed);
    const b = random(transB ? [n, k] : [k, n], dtype, seed + 1);
    const opts = { transA, transB };
    const what = `${dtype} ${m}×${n}×${k} transA=${transA} transB=${transB}`;
    const c = matmul(a, b, opts);
    expect(c.shape, what).toEqual([m, n]);
    expect(c.dtype, what).toBe(OUT[dtype]);
    expectClose(what, c, reference(a, b, opts));
  });
}

const TAILS = [0, 1, 3, 4, 5, 17];

describe("matmul against a float64 loop", () => {
  for (const dtype of ["f32", "f64", "bf16", "f16"] as const) {
    it(`${dtype}: every m, n, k in {0, 1, 3, 4, 5, 17}, all layouts`, () => {
      for (const [transA, transB] of LAYOUTS)
        for (const m of TAILS)
          for (const n of TAILS) for (const k of TAILS) checkProduct(dtype, m, n, k, transA, transB);
    });

    it(`${dtype}: sizes across panel, cache-block and thread boundaries, all layouts`, () => {
      // 600×40×64 splits by rows over threads; the 1023s are long thin edges; 130×777×400
      // crosses mc, nc and kc of both kernels and splits by columns.
      const shapes = [
        [67, 129, 33],
        [5, 1023, 17],
        [1023, 3, 5],
        [3, 5, 1023],
        [600, 40, 64],
      ];
      for (const [transA, transB] of LAYOUTS)
        for (const [m, n, k] of shapes) checkProduct(dtype, m, n, k, transA, transB, m + n);
      // The block crossings are layout-independent (strides); NN and TT take all four pack paths.
      checkProduct(dtype, 130, 777, 400, false, false, 907);
      checkProduct(dtype, 130, 777, 400, true, true, 907);
    });
  }

  it("f32: an MLP layer's forward (NN) and backward (NT, TN) shapes, 256×784×256", () => {
    checkProduct("f32", 256, 256, 784, false, false); // x[256,784] · w[784,256]
    checkProduct("f32", 256, 784, 256, false, true); // dy[256,256] · wᵀ
    checkProduct("f32", 784, 256, 256, true, false); // xᵀ · dy
  });
});

describe("threads", () => {
  it("one thread and the whole pool give bit-identical results (the split never changes a sum's order)", () =>
    scope(() => {
      for (const [m, n, k, transA, transB] of [
        [600, 40, 64, false, false], // split by rows
        [130, 777, 400, true, true], // split by columns
      ] as const) {
        const a = random(transA ? [k, m] : [m, k], "f32", m);
        const b = random(transB ? [n, k] : [k, n], "f32", n);
        const bias = random([n], "f32", k);
        const one = matmul(a, b, { transA, transB, bias, threads: 1 }).data();
        const all = matmul(a, b, { transA, transB, bias }).data();
        expect(
          Buffer.from(all.buffer, all.byteOffset, all.byteLength).equals(
            Buffer.from(one.buffer, one.byteOffset, one.byteLength),
          ),
        ).toBe(true);
      }
    }));
});

describe("bias and accumulate", () => {
  for (const dtype of ["f32", "f64", "bf16", "f16"] as const) {
    it(`${dtype}: C = op(a)·op(b) + bias, and out += op(a)·op(b) (+ bias), all layouts`, () => {
      for (const [transA, transB] of LAYOUTS) {
        for (const [m, n, k] of [
          [1, 1, 1],
          [5, 17, 3],
          [17, 5, 0],
          [67, 129, 400], // two k blocks (bias only in the first) and a column split over threads
        ]) {
          scope(() => {
            const a = random(transA ? [k, m] : [m, k], dtype, m);
            const b = random(transB ? [n, k] : [k, n], dtype, n);
            const bias = random([n], OUT[dtype], k + 7);
            const what = `${dtype} ${m}×${n}×${k} transA=${transA} transB=${transB}`;
            expectClose(
              `${what} bias`,
              matmul(a, b, { transA, transB, bias }),
              reference(a, b, { transA, transB, bias }),
            );

            const out = random([m, n], OUT[dtype], 99);
            const c0 = out.toArray();
            const same = matmul(a, b, { transA, transB, out, accumulate: true });
            expect(same).toBe(out);
            expectClose(`${what} accumulate`, out, reference(a, b, { transA, transB }, c0));

            const c1 = out.toArray();
            matmul(a, b, { transA, transB, bias, out, accumulate: true });
            expectClose(`${what} bias + accumulate`, out, reference(a, b, { transA, transB, bias }, c1));

            matmul(a, b, { transA, transB, out }); // out without accumulate is overwritten
            expectClose(`${what} out`, out, reference(a, b, { transA, transB }));
          });
        }
      }
    });
  }
});

describe("edge values", () => {
  const EDGE: Record<InDType, number[]> = {
    f32: [Number.NaN, Infinity, -Infinity, 0, -0, 1e-40, -3e-39, 2 ** -149, 1e18, -1e18],
    f64: [Number.NaN, Infinity, -Infinity, 0, -0, 5e-324, -1e-310, 1e150, -1e150],
    bf16: [Number.NaN, Infinity, -Infinity, 0, -0, 1e-40, -(2 ** -133), 1e18, -1e18],
    f16: [Number.NaN, Infinity, -Infinity, 0, -0, 2 ** -24, -(2 ** -20), 6e-5, 65504, -65504],
  };
  for (const dtype of ["f32", "f64", "bf16", "f16"] as const) {
    it(`${dtype}: NaN, ±inf, ±0, subnormals and huge values propagate like the float64 loop`, () => {
      for (const [transA, transB] of LAYOUTS) {
        for (const [m, n, k] of [
          [17, 17, 17],
          [8, 9, 6],
        ]) {
          scope(() => {
            const r = rng(m * 31 + k);
            // Mostly ordinary values with edge values sprinkled in (sparse, so rows stay mixed).
            const values = (len: number) =>
              Array.from({ length: len }, () =>
                r() < 0.08 ? EDGE[dtype][Math.floor(r() * EDGE[dtype].length)] : r() * 2 - 1,
              );
            const make = (shape: number[]) => {
              const v = values(shape[0] * shape[1]);
              return tensor(dtype === "f64" ? Float64Array.from(v) : v, shape, { dtype });
            };
            const a = make(transA ? [k, m] : [m, k]);
            const b = make(transB ? [n, k] : [k, n]);
            expectClose(
              `${dtype} edges ${m}×${n}×${k} ${transA} ${transB}`,
              matmul(a, b, { transA, transB }),
              reference(a, b, { transA, transB }),
            );
          });
        }
      }
    });
  }

  for (const [dtype, quarter] of [
    ["f16", 0x3400],
    ["bf16", 0x3e80],
  ] as const) {
    it(`${dtype}: all 65,536 patterns widen exactly, through both SIMD packing paths (against tensor.ts's decoder)`, () =>
      scope(() => {
        // Row i of op(a) holds pattern i four times and b is a column of 0.25s, so C[i] is the
        // pattern's value exactly (inf and NaN included); depth 4 takes the vector loads.
        for (const transA of [false, true]) {
          const bits = new Uint16Array(65536 * 4);
          for (let i = 0; i < 65536; i++) for (let p = 0; p < 4; p++) bits[transA ? p * 65536 + i : i * 4 + p] = i;
          const a = tensor(bits, transA ? [4, 65536] : [65536, 4], { dtype });
          const b = tensor(new Uint16Array(4).fill(quarter), [4, 1], { dtype });
          const got = matmul(a, b, { transA }).toArray();
          const want = tensor(
            Uint16Array.from({ length: 65536 }, (_, i) => i),
            [65536],
            { dtype },
          ).toArray();
          for (let i = 0; i < 65536; i++) {
            // (−0 comes out as +0: the accumulators start at +0, and +0 + −0 = +0)
            if (!(got[i] === want[i] || (Number.isNaN(want[i]) && Number.isNaN(got[i])))) {
              throw new Error(
                `${dtype} 0x${i.toString(16)} (transA=${transA}) widened to ${got[i]}, expected ${want[i]}`,
              );
            }
          }
        }
      }));
  }
});

describe("bad arguments", () => {
  it("names the op, the argument, and what was expected", () =>
    scope(() => {
      const a = zeros([3, 4]);
      const b = zeros([5, 6]);
      expect(() => matmul(a, b)).toThrow(
        /matmul: inner dimensions differ: a \[3, 4\] gives k = 4, b \[5, 6\] gives k = 5/,
      );
      expect(() => matmul(a, zeros([4, 4]), { transA: true })).toThrow(
        /a \[3, 4\] \(transposed\) gives k = 3, b \[4, 4\] gives k = 4/,
      );
      expect(() => matmul(zeros([4]), b)).toThrow(/matmul: argument a must be 2-D, got shape \[4\]/);
      expect(() => matmul(a, zeros([4, 2, 2]))).toThrow(/matmul: argument b must be 2-D, got shape \[4, 2, 2\]/);
      expect(() => matmul(a, [] as unknown as Tensor)).toThrow(/matmul: argument b must be a Tensor, got an array/);
      expect(() => matmul(a, zeros([4, 2], { dtype: "f16" }))).toThrow(
        /matmul: arguments a \(f32\) and b \(f16\) are not a supported pair; supported: f32×f32, f64×f64, bf16×bf16, f16×f16/,
      );
      expect(() => matmul(zeros([3, 4], { dtype: "i32" }), zeros([4, 2], { dtype: "i32" }))).toThrow(
        /a \(i32\) and b \(i32\)/,
      );
      const b2 = zeros([4, 2]);
      expect(() => matmul(a, b2, { bias: zeros([3]) })).toThrow(
        /matmul: argument bias has shape \[3\], expected \[2\]/,
      );
      expect(() => matmul(a, b2, { bias: zeros([1, 2]) })).toThrow(/argument bias has shape \[1, 2\], expected \[2\]/);
      expect(() => matmul(a, b2, { bias: zeros([2], { dtype: "f64" }) })).toThrow(
        /matmul: argument bias has dtype f64, expected f32/,
      );
      const h = zeros([3, 4], { dtype: "bf16" });
      const hb = zeros([4, 2], { dtype: "bf16" });
      expect(() => matmul(h, hb, { bias: zeros([2], { dtype: "bf16" }) })).toThrow(/bias has dtype bf16, expected f32/);
      expect(() => matmul(a, b2, { out: zeros([2, 3]) })).toThrow(
        /matmul: argument out has shape \[2, 3\], expected \[3, 2\]/,
      );
      expect(() => matmul(a, b2, { out: zeros([3, 2], { dtype: "f64" }) })).toThrow(
        /argument out has dtype f64, expected f32/,
      );
      expect(() => matmul(a, b2, { accumulate: true })).toThrow(/matmul: accumulate: true needs an out tensor/);
      const sq = zeros([4, 4]);
      expect(() => matmul(sq, sq, { out: sq })).toThrow(/matmul: argument out must not be a or b/);
      expect(() => matmul(a, b2, { threads: 0 })).toThrow(/matmul: option threads must be a positive integer, got 0/);
      const gone = zeros([4, 2]);
      gone.dispose();
      expect(() => matmul(a, gone)).toThrow(/used after dispose/);
    }));
});

describe("relaxed-SIMD build", () => {
  // Node 20 validates relaxed SIMD only with --experimental-wasm-relaxed-simd, so the relaxed
  // kernels run in a child process with that flag, straight from kernels/dist, against the same
  // bound (here with its f64 reference in the child). Runtimes that validate it unflagged
  // (Node ≥ 22, Deno, Bun) run the child without the flag.
  it("gemm_f32/bf16/f16/f64 of plait-c.relaxed.wasm (fused multiply-add) match the float64 loop", () => {
    const wasm = new URL("../kernels/dist/plait-c.relaxed.wasm", import.meta.url);
    // the flag when this runtime needs it, or when this process was started with it (vitest's relaxed project)
    const flag = "--experimental-wasm-relaxed-simd";
    const flags = WebAssembly.validate(readFileSync(wasm)) && !process.execArgv.includes(flag) ? [] : [flag];
    const child = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", RELAXED_CHILD, wasm.pathname], {
      encoding: "utf8",
    });
    expect(child.status, child.stderr).toBe(0);
    const report = JSON.parse(child.stdout) as { cases: number; failures: string[] };
    expect(report.failures).toEqual([]);
    expect(report.cases).toBe(4 * 3 * 3);
  });
});

// The child: instantiates the relaxed C module over its own shared memory and checks each
// dtype × layout × shape (with bias and accumulate) against a float64 loop.
const RELAXED_CHILD = `
import { readFileSync } from "node:fs";
const memory = new WebAssembly.Memory({ initial: 1024, maximum: 65536, shared: true });
const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(process.argv[1])), {
  env: { memory, abort() { throw new Error("abort"); } }, wasi_snapshot_preview1: {},
}).exports;
e.stackRestore((1 << 20) + 65536);
let seed = 7;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const bf16 = () => ((f32[0] = rand()), u32[0] >>> 16);
const fromBF16 = (h) => ((u32[0] = h << 16), f32[0]);
// normal halves of magnitude 2^-5 .. 2^1 with random sign and mantissa
const f16 = () => ((rand() < 0 ? 0x8000 : 0) | ((10 + Math.floor((rand() + 1) * 3)) << 10) | Math.floor((rand() + 1) * 512));
const fromF16 = (h) => (h & 0x8000 ? -1 : 1) * (1 + (h & 0x3ff) / 1024) * 2 ** (((h >> 10) & 31) - 15);
const same = (x) => x;
const TYPES = {
  f32: { fn: "gemm_f32", scratch: "gemm_f32_scratch_bytes", Arr: Float32Array, Out: Float32Array, gen: rand, dec: same, u: 2 ** -24 },
  bf16: { fn: "gemm_bf16", scratch: "gemm_f32_scratch_bytes", Arr: Uint16Array, Out: Float32Array, gen: bf16, dec: fromBF16, u: 2 ** -24 },
  f16: { fn: "gemm_f16", scratch: "gemm_f32_scratch_bytes", Arr: Uint16Array, Out: Float32Array, gen: f16, dec: fromF16, u: 2 ** -24 },
  f64: { fn: "gemm_f64", scratch: "gemm_f64_scratch_bytes", Arr: Float64Array, Out: Float64Array, gen: rand, dec: same, u: 2 ** -53 },
};
const failures = [];
let cases = 0;
for (const [name, T] of Object.entries(TYPES)) {
  for (const [ta, tb] of [[0, 0], [0, 1], [1, 0]]) {
    for (const [m, n, k] of [[1, 1, 1], [37, 29, 41], [67, 129, 400]]) {
      cases++;
      let top = 17 << 20;
      // a view of len elements in the wasm memory, filled from gen
      const take = (Arr, len, gen) => {
        const v = new Arr(memory.buffer, top, len);
        top += Math.ceil((len * Arr.BYTES_PER_ELEMENT) / 64) * 64;
        for (let i = 0; i < len; i++) v[i] = gen();
        return v;
      };
      const A = take(T.Arr, m * k, T.gen);
      const B = take(T.Arr, k * n, T.gen);
      const bias = take(T.Out, n, rand);
      const C = take(T.Out, m * n, rand);
      const c0 = C.slice();
      const scratch = take(Uint8Array, e[T.scratch](m, n, k), () => 0).byteOffset;
      e[T.fn](m, n, k, A.byteOffset, ta ? 1 : k, ta ? m : 1, B.byteOffset, tb ? 1 : n, tb ? k : 1, C.byteOffset, n, bias.byteOffset, 1, scratch);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let s = bias[j] + c0[i * n + j], t = Math.abs(bias[j]) + Math.abs(c0[i * n + j]);
        for (let p = 0; p < k; p++) {
          const x = T.dec(A[ta ? p * m + i : i * k + p]) * T.dec(B[tb ? j * k + p : p * n + j]);
          s += x; t += Math.abs(x);
        }
        const got = C[i * n + j];
        if (!(Math.abs(got - s) <= 2 * (k + 4) * T.u * t)) { failures.push(name + " " + m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb + " [" + i + "," + j + "] " + got + " vs " + s); break; }
      }
    }
  }
}
console.log(JSON.stringify({ cases, failures: failures.slice(0, 5) }));
`;
