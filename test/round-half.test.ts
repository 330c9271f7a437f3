import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { castInto, roundThrough } from "../src/core/castInto.ts";
import { configure, runtime, scope, Tensor } from "../src/index.ts";
import { firstDiff } from "./bits.ts";

// kernels/as/round_half.ts: f32 rounded through f16/bf16 back to f32 in one pass. References:
// numpy's casts (test/vectors/f32_to_16.bin, the half results, widened by test/vectors/
// f16_to_f32.bin for f16 and by << 16 for bf16), and the two-cast path it replaces (f32_to_half
// then half_to_f32), bit for bit, NaN payloads included.

configure({ threads: 3 }); // roundThrough of a large tensor splits unevenly over three threads

const SIZES = [0, 1, 3, 7, 8, 9, 17, 1023, 1024, 1031, 4099]; // tails only, SIMD body ± tails, several NaN blocks
const LARGE = 400_003; // above 3 × 2^17: the threaded path, with a ragged last part

function readVectors(name: string): { n: number; buf: ArrayBuffer } {
  const file = readFileSync(new URL(`./vectors/${name}`, import.meta.url));
  const buf = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  expect(new TextDecoder().decode(new Uint8Array(buf, 0, 8))).toBe("PLAITVEC");
  return { n: new Uint32Array(buf, 12, 1)[0], buf };
}

const H = readVectors("f16_to_f32.bin");
const F16_TO_F32 = new Uint32Array(H.buf, 16, H.n);
const S = readVectors("f32_to_16.bin");
const F32_IN = new Uint32Array(S.buf, 16, S.n);
const WANT = {
  f16: Uint32Array.from(new Uint16Array(S.buf, 16 + 4 * S.n, S.n), (h) => F16_TO_F32[h]),
  bf16: Uint32Array.from(new Uint16Array(S.buf, 16 + 6 * S.n, S.n), (h) => (h << 16) >>> 0),
} as const;
const HALVES = ["f16", "bf16"] as const;

/** Runs `fn(src, dst, n)` on one thread over f32 bit patterns; checks the 32 bytes after dst were not written. */
function runKernel(fn: string, input: Uint32Array): Uint32Array {
  return scope(() => {
    const n = input.length;
    const src = new Tensor([4 * n], "u8");
    const dst = new Tensor([4 * n + 32], "u8");
    const { memory, k } = runtime();
    new Uint32Array(memory.buffer, src.ptr, n).set(input);
    new Uint8Array(memory.buffer, dst.ptr, dst.size).fill(0xab);
    k.as[fn](src.ptr, dst.ptr, n);
    expect(new Uint8Array(memory.buffer, dst.ptr + 4 * n, 32).every((b) => b === 0xab)).toBe(true);
    return new Uint32Array(memory.buffer, dst.ptr, n).slice();
  });
}

/** The path the kernel replaces: f32 → half → f32 with the two cast kernels. */
function twoCasts(half: "f16" | "bf16", input: Uint32Array): Uint32Array {
  return scope(() => {
    const x = new Tensor([input.length], "f32");
    new Uint32Array(runtime().memory.buffer, x.ptr, input.length).set(input);
    const h = new Tensor([input.length], half);
    const back = new Tensor([input.length], "f32");
    castInto(x, h);
    castInto(h, back);
    return new Uint32Array(runtime().memory.buffer, back.ptr, input.length).slice();
  });
}

function window(src: Uint32Array, from: number, count: number): Uint32Array {
  return Uint32Array.from({ length: count }, (_, i) => src[(from + i) % src.length]);
}

const isNaN32 = (u: number) => (u & 0x7fffffff) >>> 0 > 0x7f800000;

describe("f32 rounded through a half dtype (f32_round_f16, f32_round_bf16)", () => {
  for (const half of HALVES) {
    const fn = `f32_round_${half}`;

    it(`${half}: matches numpy's cast, widened, on all ${S.n} reference samples (ties, subnormals, overflow, NaN)`, () => {
      expect(firstDiff(runKernel(fn, F32_IN), WANT[half])).toBe(-1);
    });

    for (const n of SIZES) {
      it(`${half}: matches at n = ${n} from several offsets (scalar tails included)`, () => {
        for (const from of [0, 12_345, S.n - 5]) {
          expect(firstDiff(runKernel(fn, window(F32_IN, from, n)), window(WANT[half], from, n))).toBe(-1);
        }
      });
    }

    it(`${half}: bit-identical to the two casts over a sweep of every 4099th f32 pattern`, () => {
      const sweep = Uint32Array.from({ length: Math.ceil(2 ** 32 / 4099) }, (_, i) => i * 4099);
      expect(firstDiff(runKernel(fn, sweep), twoCasts(half, sweep))).toBe(-1);
    });

    it(`${half}: a lone NaN, inf or overflowing value anywhere in a block leaves the rest of the block exact`, () => {
      const clean = F32_IN.filter((u) => (u & 0x7fffffff) >>> 0 < 0x477f0000); // finite, below f16's overflow
      const odd = [0x7fc00001, 0xff812345, 0x7f800000, 0xff800000, 0x477ff000, 0xc77fefff, 0x7f7fffff];
      for (const [k, at] of [0, 7, 8, 1023, 1024, 1031, 2047, 2048, 2099].entries()) {
        const x = window(clean, k * 977, 2100);
        x[at] = odd[k % odd.length];
        expect(firstDiff(runKernel(fn, x), twoCasts(half, x))).toBe(-1);
        expect(isNaN32(runKernel(fn, x)[at])).toBe(isNaN32(x[at]));
      }
    });

    it(`${half}: roundThrough rounds a large f32 tensor on three threads, and widens a ${half} one`, () =>
      scope(() => {
        const input = window(F32_IN, 777, LARGE);
        const x = new Tensor([LARGE], "f32");
        new Uint32Array(runtime().memory.buffer, x.ptr, LARGE).set(input);
        const r = roundThrough(x, half);
        expect(r.dtype).toBe("f32");
        expect(r.shape).toEqual([LARGE]);
        const got = new Uint32Array(runtime().memory.buffer, r.ptr, LARGE).slice();
        expect(firstDiff(got, window(WANT[half], 777, LARGE))).toBe(-1);
        const h = new Tensor([3, 5], half);
        castInto(
          (() => {
            const t = new Tensor([3, 5], "f32");
            (t.data() as Float32Array).set(Array.from({ length: 15 }, (_, i) => (i - 7) / 3));
            return t;
          })(),
          h,
        );
        const w = roundThrough(h, half);
        const back = new Tensor([3, 5], "f32");
        castInto(h, back);
        expect(w.shape).toEqual([3, 5]);
        expect([...w.data()]).toEqual([...back.data()]);
      }));
  }

  it("roundThrough refuses a dtype that is neither f32 nor the half dtype", () =>
    scope(() => {
      expect(() => roundThrough(new Tensor([2], "f64"), "f16")).toThrow(
        "plait: roundThrough: argument x has dtype f64, expected f32 or f16",
      );
      expect(() => roundThrough(new Tensor([2], "bf16"), "f16")).toThrow(
        "plait: roundThrough: argument x has dtype bf16, expected f32 or f16",
      );
    }));
});
