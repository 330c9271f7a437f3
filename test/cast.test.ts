import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unscaleAndCheckFinite } from "../src/core/cast.ts";
import { bf16ToNumber, f16ToNumber, numberToBF16, numberToF16 } from "../src/core/tensor.ts";
import { cast, configure, fromBF16, fromF16, runtime, scope, Tensor, tensor, toBF16, toF16 } from "../src/index.ts";
import { firstDiff } from "./bits.ts";

// Casts are compared bit for bit with reference vectors from numpy (scripts/gen-cast-vectors.py
// writes test/vectors/; see its docstring for the NaN policy), JavaScript's exact f32 → f64
// widening, Math.fround, and a float64 reference for the unscale step.

configure({ threads: 3 }); // large inputs split unevenly over three threads

const SIZES = [0, 1, 3, 4, 5, 17, 1023, 4099]; // empty, scalar tail only, SIMD body ± tails, several NaN blocks
const LARGE = 400_003; // above 3 × 2^17: the threaded path, with a ragged last part

function readVectors(name: string): { n: number; buf: ArrayBuffer } {
  const file = readFileSync(new URL(`./vectors/${name}`, import.meta.url));
  const buf = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  expect(new TextDecoder().decode(new Uint8Array(buf, 0, 8))).toBe("PLAITVEC");
  const [version, n] = new Uint32Array(buf, 8, 2);
  expect(version).toBe(1);
  return { n, buf };
}

const H = readVectors("f16_to_f32.bin"); // f32 bits of every f16 pattern
const F16_TO_F32 = new Uint32Array(H.buf, 16, H.n);
const S = readVectors("f32_to_16.bin");
const F32_IN = new Uint32Array(S.buf, 16, S.n);
const F16_OUT = new Uint16Array(S.buf, 16 + 4 * S.n, S.n);
const BF16_OUT = new Uint16Array(S.buf, 16 + 6 * S.n, S.n);
const D = readVectors("f64_to_f32.bin");
const F64_IN = new Float64Array(D.buf, 16, D.n);
const F64_OUT = new Uint32Array(D.buf, 16 + 8 * D.n, D.n);

const ALL_HALVES = Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNaN32 = (u: number) => (u & 0x7fffffff) >>> 0 > 0x7f800000;
const isNaN16 = (h: number) => (h & 0x7fff) > 0x7c00;
const isNaNBF16 = (h: number) => (h & 0x7fff) > 0x7f80;
const f32Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
const asF32 = (u: Uint32Array) => new Float32Array(u.buffer, u.byteOffset, u.length);

/** `count` elements of `src` starting at `from`, wrapping around. */
function window<T extends Uint32Array | Uint16Array | Float64Array>(src: T, from: number, count: number): T {
  const out = new (src.constructor as new (n: number) => T)(count);
  for (let i = 0; i < count; i++) out[i] = src[(from + i) % src.length];
  return out;
}

type Ctor = typeof Float64Array | typeof Uint32Array | typeof Uint16Array;

/**
 * Runs kernel `fn(src, dst, n, ...extra)` directly on one thread over `input` and returns the n
 * outputs as an `Out`; checks that the 32 bytes after them were not written.
 */
function runKernel<O extends Ctor>(
  fn: string,
  input: Float64Array | Uint32Array | Uint16Array,
  Out: O,
  extra: number[] = [],
) {
  return scope(() => {
    const n = input.length;
    const src = new Tensor([input.byteLength], "u8");
    const dst = new Tensor([n * Out.BYTES_PER_ELEMENT + 32], "u8");
    const { memory, k } = runtime();
    new (input.constructor as Ctor)(memory.buffer, src.ptr, n).set(input);
    new Uint8Array(memory.buffer, dst.ptr, dst.size).fill(0xab);
    const ret = k.as[fn](src.ptr, dst.ptr, n, ...extra) as number | undefined;
    const guard = new Uint8Array(memory.buffer, dst.ptr + n * Out.BYTES_PER_ELEMENT, 32);
    expect(guard.every((b) => b === 0xab)).toBe(true);
    return { out: new Out(memory.buffer, dst.ptr, n).slice() as InstanceType<O>, ret };
  });
}

describe("f16 → f32", () => {
  it("matches numpy on all 65,536 patterns (kernel and fromF16), signalling NaNs included", () => {
    expect(firstDiff(runKernel("f16_to_f32", ALL_HALVES, Uint32Array).out, F16_TO_F32)).toBe(-1);
    expect(firstDiff(new Uint32Array(fromF16(ALL_HALVES).buffer), F16_TO_F32)).toBe(-1);
  });

  for (const n of [...SIZES, LARGE]) {
    it(`matches at n = ${n} from several offsets`, () => {
      for (const from of [0, 31_741, 64_511]) {
        const h = window(ALL_HALVES, from, n);
        const got = n === LARGE ? new Uint32Array(fromF16(h).buffer) : runKernel("f16_to_f32", h, Uint32Array).out;
        expect(firstDiff(got, window(F16_TO_F32, from, n))).toBe(-1);
      }
    });
  }
});

describe("f32 → f16 and f32 → bf16", () => {
  const cases = [
    { name: "f16", fn: "f32_to_f16", api: toF16, want: F16_OUT },
    { name: "bf16", fn: "f32_to_bf16", api: toBF16, want: BF16_OUT },
  ];
  for (const { name, fn, api, want } of cases) {
    it(`${name}: matches all ${S.n} reference samples (ties, subnormals, overflow, NaN payloads)`, () => {
      expect(firstDiff(runKernel(fn, F32_IN, Uint16Array).out, want)).toBe(-1);
      expect(firstDiff(api(asF32(F32_IN)), want)).toBe(-1);
    });

    for (const n of [...SIZES, LARGE]) {
      it(`${name}: matches at n = ${n} from several offsets`, () => {
        for (const from of [0, 12_345, S.n - 3]) {
          const x = window(F32_IN, from, n);
          const got = n === LARGE ? api(asF32(x)) : runKernel(fn, x, Uint16Array).out;
          expect(firstDiff(got, window(want, from, n))).toBe(-1);
        }
      });
    }

    it(`${name}: a lone NaN anywhere in NaN-free data is exact, and so is the rest of its block`, () => {
      const clean = [...F32_IN.keys()].filter((i) => !isNaN32(F32_IN[i]) && (F32_IN[i] & 0x7fffffff) !== 0x7f800000);
      const nans = [...F32_IN.keys()].filter((i) => isNaN32(F32_IN[i]));
      const idx = window(Uint32Array.from(clean), 0, 2100);
      for (const [k, at] of [0, 7, 8, 1023, 1024, 1031, 2047, 2048, 2099].entries()) {
        const pick = Uint32Array.from(idx);
        pick[at] = nans[(k * 5) % nans.length];
        const x = Uint32Array.from(pick, (i) => F32_IN[i]);
        expect(
          firstDiff(
            runKernel(fn, x, Uint16Array).out,
            Uint16Array.from(pick, (i) => want[i]),
          ),
        ).toBe(-1);
      }
    });
  }

  it("scalar helpers numberToF16 / numberToBF16 (tensor.ts) match the same samples", () => {
    const x = asF32(F32_IN);
    for (const [encode, want, nan] of [
      [numberToF16, F16_OUT, isNaN16],
      [numberToBF16, BF16_OUT, isNaNBF16],
    ] as const) {
      const got = Uint16Array.from(x, (v) => encode(v));
      // a NaN passes through a JavaScript number, which need not keep its payload
      expect(firstDiff(got, want, (a, b) => nan(a) && nan(b) && (a & 0x8000) === (b & 0x8000))).toBe(-1);
    }
  });
});

describe("scalar decoders f16ToNumber / bf16ToNumber (tensor.ts)", () => {
  it("match numpy and u16 << 16 on all 65,536 patterns", () => {
    const nanEq = (a: number, b: number) => isNaN32(a) && isNaN32(b);
    const f16 = Uint32Array.from(ALL_HALVES, (h) => f32Bits(f16ToNumber(h)));
    expect(firstDiff(f16, F16_TO_F32, nanEq)).toBe(-1);
    const bf16 = Uint32Array.from(ALL_HALVES, (h) => f32Bits(bf16ToNumber(h)));
    expect(
      firstDiff(
        bf16,
        Uint32Array.from(ALL_HALVES, (h) => (h << 16) >>> 0),
        nanEq,
      ),
    ).toBe(-1);
  });
});

describe("bf16 → f32", () => {
  const want = Uint32Array.from(ALL_HALVES, (h) => (h << 16) >>> 0);
  it("is u16 << 16 on all 65,536 patterns (kernel and fromBF16)", () => {
    expect(firstDiff(runKernel("bf16_to_f32", ALL_HALVES, Uint32Array).out, want)).toBe(-1);
    expect(firstDiff(new Uint32Array(fromBF16(ALL_HALVES).buffer), want)).toBe(-1);
  });
  for (const n of [...SIZES, LARGE]) {
    it(`is exact at n = ${n}`, () => {
      const h = window(ALL_HALVES, 65_000, n);
      const got = n === LARGE ? new Uint32Array(fromBF16(h).buffer) : runKernel("bf16_to_f32", h, Uint32Array).out;
      expect(firstDiff(got, window(want, 65_000, n))).toBe(-1);
    });
  }
});

describe("round trips over all 65,536 patterns", () => {
  // The only change: a signalling NaN comes back quiet (quiet bit set, sign and payload kept).
  it("bf16 → f32 → bf16 is the identity, sNaN → h | 0x0040", () => {
    const back = toBF16(fromBF16(ALL_HALVES));
    expect(
      firstDiff(
        back,
        ALL_HALVES.map((h) => (isNaNBF16(h) ? h | 0x0040 : h)),
      ),
    ).toBe(-1);
  });
  it("f16 → f32 → f16 is the identity, sNaN → h | 0x0200", () => {
    const back = toF16(fromF16(ALL_HALVES));
    expect(
      firstDiff(
        back,
        ALL_HALVES.map((h) => (isNaN16(h) ? h | 0x0200 : h)),
      ),
    ).toBe(-1);
  });
});

describe("f32 ↔ f64", () => {
  const nanEq32 = (a: number, b: number) => isNaN32(a) && isNaN32(b);
  it(`f64 → f32 matches numpy on ${D.n} samples and Math.fround on random doubles`, () => {
    expect(firstDiff(runKernel("f64_to_f32", F64_IN, Uint32Array).out, F64_OUT)).toBe(-1);
    const x = Float64Array.from({ length: 5000 }, (_, i) => (Math.random() - 0.5) * 2 ** ((i % 300) - 150));
    x.set([Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4028235677973366e38], 100);
    const want = Uint32Array.from(x, (v) => f32Bits(Math.fround(v)));
    expect(firstDiff(runKernel("f64_to_f32", x, Uint32Array).out, want, nanEq32)).toBe(-1);
  });
  for (const n of [...SIZES, LARGE]) {
    it(`both directions at n = ${n}`, () =>
      scope(() => {
        const d = window(F64_IN, 777, n);
        const want = window(F64_OUT, 777, n);
        const wide = Float64Array.from(asF32(want));
        if (n === LARGE) {
          const t64 = tensor(d, [n], { dtype: "f64" });
          const t32 = cast(t64, "f32");
          expect(firstDiff(new Uint32Array(t32.toFloat32Array().buffer), want)).toBe(-1);
          expect(firstDiff(cast(t32, "f64").data(), wide)).toBe(-1);
        } else {
          expect(firstDiff(runKernel("f64_to_f32", d, Uint32Array).out, want)).toBe(-1);
          expect(firstDiff(runKernel("f32_to_f64", want, Float64Array).out, wide)).toBe(-1);
        }
      }));
  }
  it("f32 → f64 is exact on every reference f32 sample (NaN stays NaN)", () => {
    const got = runKernel("f32_to_f64", F32_IN, Float64Array).out;
    const want = Float64Array.from(asF32(F32_IN));
    expect(firstDiff(got, want, (a, b) => Number.isNaN(a) && Number.isNaN(b))).toBe(-1);
  });
});

describe("unscale + finite check", () => {
  const rand = (n: number) => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * 1e4);
  /** float64 reference: inv = f32(1 / scale), out = f32(x · inv), finite = every input finite. */
  function reference(x: Float32Array, scale: number) {
    const inv = Math.fround(1 / scale);
    return { out: x.map((v) => Math.fround(v * inv)), finite: x.every(Number.isFinite), inv };
  }
  const sameF32 = (got: Float32Array, want: Float32Array) =>
    firstDiff(new Uint32Array(got.buffer), new Uint32Array(want.buffer), (a, b) => isNaN32(a) && isNaN32(b));
  // positions of one bad value: first, a SIMD lane, the last before the tail, the scalar tail
  const spots = (n: number) => [...new Set([0, 5, n - 8, n - 1, Math.floor(n / 2)])].filter((i) => i >= 0 && i < n);

  for (const n of SIZES) {
    it(`f32 kernel at n = ${n}: values and flag, with inf/NaN planted at each spot`, () => {
      for (const scale of [65536, 3, 1 / 1024]) {
        for (const bad of [undefined, Number.POSITIVE_INFINITY, Number.NaN, Number.NEGATIVE_INFINITY]) {
          for (const at of bad === undefined ? [-1] : spots(n)) {
            const x = rand(n);
            if (at >= 0) x[at] = bad!;
            const ref = reference(x, scale);
            const flag = new Tensor([1], "i32");
            const { out, ret } = runKernel("unscale_f32", new Uint32Array(x.buffer), Uint32Array, [ref.inv, flag.ptr]);
            expect(ret).toBe(ref.finite ? 1 : 0);
            expect(flag.data()[0]).toBe(ret);
            flag.dispose();
            expect(sameF32(asF32(out), ref.out)).toBe(-1);
          }
        }
      }
    });
  }

  for (const [dtype, encode] of [
    ["f16", toF16],
    ["bf16", toBF16],
  ] as const) {
    for (const n of [...SIZES, LARGE]) {
      it(`${dtype} → f32 fused at n = ${n}, with inf/NaN planted at each spot`, () =>
        scope(() => {
          for (const bad of [undefined, Number.POSITIVE_INFINITY, Number.NaN]) {
            for (const at of bad === undefined ? [-1] : spots(n)) {
              const x = rand(n);
              if (at >= 0) x[at] = bad!;
              const h = encode(x);
              const wide = dtype === "f16" ? fromF16(h) : fromBF16(h);
              const ref = reference(wide, 1024);
              const t = tensor(h, [n], { dtype });
              const out = new Tensor([n], "f32");
              expect(unscaleAndCheckFinite(t, 1024, out)).toBe(ref.finite);
              expect(sameF32(out.toFloat32Array(), ref.out)).toBe(-1);
            }
          }
        }));
    }
  }

  it(`f32 in place at n = ${LARGE} (threaded), with a bad value in each thread's part`, () =>
    scope(() => {
      for (const at of [-1, 3, 200_001, LARGE - 1]) {
        const x = rand(LARGE);
        if (at >= 0) x[at] = Number.NaN;
        const ref = reference(x, 65536);
        const t = tensor(x, [LARGE]);
        expect(unscaleAndCheckFinite(t, 65536)).toBe(ref.finite);
        expect(sameF32(t.toFloat32Array(), ref.out)).toBe(-1);
      }
    }));

  it("reports finiteness of the inputs, not of the products", () =>
    scope(() => {
      const t = tensor([3e38, 1]);
      expect(unscaleAndCheckFinite(t, 0.5)).toBe(true); // 3e38 · 2 overflows, but it was finite
      expect(t.toArray()).toEqual([Number.POSITIVE_INFINITY, 2]);
    }));
});

describe("cast()", () => {
  it("converts every supported pair like the array functions, and copies for the same dtype", () =>
    scope(() => {
      const x = asF32(window(F32_IN, 0, 5000).filter((u) => !isNaN32(u)));
      const f32 = tensor(x, [x.length]);
      const h = toF16(x);
      const b = toBF16(x);
      expect(firstDiff(cast(f32, "f16").data(), h)).toBe(-1);
      expect(firstDiff(cast(f32, "bf16").data(), b)).toBe(-1);
      const f16 = cast(f32, "f16");
      const bf16 = cast(f32, "bf16");
      expect(firstDiff(cast(f16, "f32").toFloat32Array(), fromF16(h))).toBe(-1);
      expect(firstDiff(cast(bf16, "f32").toFloat32Array(), fromBF16(b))).toBe(-1);
      expect(firstDiff(cast(f16, "bf16").data(), toBF16(fromF16(h)))).toBe(-1);
      expect(firstDiff(cast(bf16, "f16").data(), toF16(fromBF16(b)))).toBe(-1);
      expect(firstDiff(cast(f16, "f64").data(), Float64Array.from(fromF16(h)))).toBe(-1);
      expect(firstDiff(cast(bf16, "f64").data(), Float64Array.from(fromBF16(b)))).toBe(-1);
      const same = cast(f16, "f16");
      expect(same.ptr).not.toBe(f16.ptr);
      expect(firstDiff(same.data(), h)).toBe(-1);
      expect(cast(tensor([[1, 2]]), "f64").shape).toEqual([1, 2]);
    }));

  it("names the pair it cannot convert, and checks its arguments", () =>
    scope(() => {
      const f64 = tensor([1], [1], { dtype: "f64" });
      expect(() => cast(f64, "f16")).toThrow(/cast: f64 → f16 is not supported \(through f32 it would round twice\)/);
      expect(() => cast(f64, "bf16")).toThrow(/cast: f64 → bf16 is not supported/);
      expect(() => cast(tensor([1]), "i32")).toThrow(/cast: f32 → i32 is not supported; cast converts between f64/);
      expect(() => cast(tensor([1], [1], { dtype: "u8" }), "f32")).toThrow(/cast: u8 → f32 is not supported/);
      expect(() => cast(tensor([1]), "f8" as never)).toThrow(/cast: argument dtype must be one of .*got "f8"/);
      expect(() => cast([1] as never, "f32")).toThrow(/cast: argument t must be a Tensor, got an array/);
      const gone = tensor([1]);
      gone.dispose();
      expect(() => cast(gone, "f16")).toThrow(/used after dispose/);
    }));
});

describe("bad input", () => {
  it("array casts name the function, the argument and what came", () => {
    expect(() => toF16(new Float64Array(2) as never)).toThrow(
      /toF16: argument x must be a Float32Array, got Float64Array/,
    );
    expect(() => toBF16([1, 2] as never)).toThrow(/toBF16: argument x must be a Float32Array, got Array/);
    expect(() => fromF16(new Float32Array(1) as never)).toThrow(
      /fromF16: argument x must be a Uint16Array, got Float32Array/,
    );
    expect(() => fromBF16(undefined as never)).toThrow(/fromBF16: argument x must be a Uint16Array, got undefined/);
    expect(toF16(new Float32Array(0))).toEqual(new Uint16Array(0));
  });

  it("unscaleAndCheckFinite rejects bad scales, dtypes and outputs", () =>
    scope(() => {
      const t = tensor([1, 2]);
      for (const scale of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-300, 1e300, "2"]) {
        expect(() => unscaleAndCheckFinite(t, scale as never)).toThrow(
          /unscaleAndCheckFinite: argument scale must be a finite number > 0 whose f32 reciprocal is finite/,
        );
      }
      const h = tensor(new Uint16Array(2), [2], { dtype: "f16" });
      expect(() => unscaleAndCheckFinite(h, 2)).toThrow(/argument t has dtype f16; in place needs f32/);
      expect(() => unscaleAndCheckFinite(tensor([1], [1], { dtype: "f64" }), 2)).toThrow(
        /argument t has dtype f64, expected f32, f16 or bf16/,
      );
      expect(() => unscaleAndCheckFinite(h, 2, tensor([1, 2, 3]))).toThrow(
        /argument out has shape \[3\], expected \[2\] like t/,
      );
      expect(() => unscaleAndCheckFinite(h, 2, tensor(new Uint16Array(2), [2], { dtype: "bf16" }))).toThrow(
        /argument out has dtype bf16, expected f32/,
      );
      expect(t.toArray()).toEqual([1, 2]); // nothing ran
    }));
});
