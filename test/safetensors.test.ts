import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readSafetensors, writeSafetensors } from "../src/checkpoint/index.ts";
import { type DType, runtime, scope, Tensor } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "plait-safetensors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ELEMENT: Record<DType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };
const NAME: Record<DType, string> = { f64: "F64", f32: "F32", f16: "F16", bf16: "BF16", i32: "I32", u8: "U8" };

/** Edge bit patterns per dtype, as little-endian bytes: NaN payloads, ±0, ±inf, subnormals, extremes. */
const EDGES: Record<DType, number[]> = {
  f64: [], // filled below from 64-bit patterns
  f32: [0x7fc00001, 0xffa00000, 0x7f800001, 0x7f800000, 0xff800000, 0, 0x80000000, 1, 0x807fffff, 0x7f7fffff],
  f16: [0x7c01, 0x7e00, 0xfe01, 0x7c00, 0xfc00, 0, 0x8000, 1, 0x83ff, 0x7bff],
  bf16: [0x7f81, 0xffc1, 0x7fc0, 0x7f80, 0xff80, 0, 0x8000, 1, 0x807f, 0x7f7f],
  i32: [-(2 ** 31), 2 ** 31 - 1, -1, 0, 1],
  u8: [0, 255, 1, 128],
};
const F64_EDGES = [
  0x7ff0000000000001n,
  0xfff8000000000abcn,
  0x8000000000000000n,
  1n,
  0x7fefffffffffffffn,
  0x7ff0000000000000n,
];

/** `count` elements of `dtype` as raw bytes: the edge patterns first, then random bits. */
function edgeBytes(dtype: DType, count: number, seed: number): Uint8Array {
  const size = ELEMENT[dtype];
  const bytes = new Uint8Array(count * size);
  const view = new DataView(bytes.buffer);
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const at = i * size;
    if (dtype === "f64")
      view.setBigUint64(at, i < F64_EDGES.length ? F64_EDGES[i] : (BigInt(rand()) << 32n) | BigInt(rand()), true);
    else {
      const v = i < EDGES[dtype].length ? EDGES[dtype][i] : rand();
      if (size === 4) view.setUint32(at, v >>> 0, true);
      else if (size === 2) view.setUint16(at, v & 0xffff, true);
      else view.setUint8(at, v & 0xff);
    }
  }
  return bytes;
}

function tensorFromBytes(shape: number[], dtype: DType, bytes: Uint8Array): Tensor {
  const t = new Tensor(shape, dtype);
  new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength).set(bytes);
  return t;
}

const bytesOfTensor = (t: Tensor) => new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength).slice();

/**
 * An independent safetensors reader (from the format's description, sharing no code with
 * src/): returns each tensor's dtype, shape and bytes, and checks the layout rules.
 */
function referenceRead(file: string) {
  const buf = readFileSync(file);
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  const headerText = buf.subarray(8, 8 + n).toString("utf8");
  expect(headerText.startsWith("{")).toBe(true);
  expect(/^ *$/.test(headerText.slice(headerText.lastIndexOf("}") + 1))).toBe(true);
  const header = JSON.parse(headerText);
  const data = buf.subarray(8 + n);
  const out: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array; begin: number }> = {};
  let total = 0;
  for (const [name, info] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = info.data_offsets;
    const elem = { F64: 8, F32: 4, F16: 2, BF16: 2, I32: 4, U8: 1 }[info.dtype as string]!;
    expect(elem).toBeDefined();
    expect(end - begin).toBe(info.shape.reduce((a: number, d: number) => a * d, 1) * elem);
    total += end - begin;
    out[name] = { dtype: info.dtype, shape: info.shape, bytes: data.subarray(begin, end), begin: 8 + n + begin };
  }
  expect(total).toBe(data.length); // packed: no gaps, no overlaps, no trailing bytes
  return { n, metadata: header.__metadata__, tensors: out };
}

/** Builds a file by hand: header text (not padded unless given so) and data bytes. */
function handBuilt(file: string, header: string | object, data: Uint8Array, lengthOverride?: bigint): string {
  const text = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(lengthOverride ?? BigInt(text.length));
  const path = join(dir, file);
  writeFileSync(path, Buffer.concat([head, text, data]));
  return path;
}

const SIZES = [0, 1, 3, 4, 5, 17, 1023, 100_003];
const DTYPES: DType[] = ["f64", "f32", "f16", "bf16", "i32", "u8"];

describe("writeSafetensors / readSafetensors", () => {
  it("round-trips every dtype bit for bit at every size, readable by an independent reader", () => {
    scope(() => {
      const want: Record<string, { dtype: DType; shape: number[]; bytes: Uint8Array }> = {};
      const tensors: Record<string, Tensor> = {};
      DTYPES.forEach((dtype, d) => {
        for (const size of SIZES) {
          const name = `${dtype}.n${size}`;
          const bytes = edgeBytes(dtype, size, d * 100 + size);
          want[name] = { dtype, shape: [size], bytes };
          tensors[name] = tensorFromBytes([size], dtype, bytes);
        }
        want[`${dtype}.scalar`] = { dtype, shape: [], bytes: edgeBytes(dtype, 1, d) };
        tensors[`${dtype}.scalar`] = tensorFromBytes([], dtype, want[`${dtype}.scalar`].bytes);
        want[`${dtype}.empty`] = { dtype, shape: [2, 0, 3], bytes: new Uint8Array(0) };
        tensors[`${dtype}.empty`] = tensorFromBytes([2, 0, 3], dtype, new Uint8Array(0));
      });
      const path = join(dir, "all.safetensors");
      writeSafetensors(path, tensors, { format: "pt", note: "ünïcode ✓" });

      const ref = referenceRead(path);
      expect(ref.n % 8).toBe(0);
      expect(ref.metadata).toEqual({ format: "pt", note: "ünïcode ✓" });
      expect(Object.keys(ref.tensors).sort()).toEqual(Object.keys(want).sort());
      for (const [name, w] of Object.entries(want)) {
        const got = ref.tensors[name];
        expect(got.dtype).toBe(NAME[w.dtype]);
        expect(got.shape).toEqual(w.shape);
        expect(Buffer.compare(got.bytes, w.bytes)).toBe(0);
        expect(got.begin % ELEMENT[w.dtype]).toBe(0); // naturally aligned in the file
      }

      const back = readSafetensors(path);
      expect(back.metadata).toEqual({ format: "pt", note: "ünïcode ✓" });
      expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(want).sort());
      for (const [name, w] of Object.entries(want)) {
        const t = back.tensors[name];
        expect([t.dtype, t.shape]).toEqual([w.dtype, w.shape]);
        expect(Buffer.compare(bytesOfTensor(t), w.bytes)).toBe(0);
      }
    });
  });

  it("reads a file built by hand: unpadded header, offsets out of key order, no metadata", () => {
    const data = new Uint8Array(4 * 3 + 2 * 2 + 1);
    const dv = new DataView(data.buffer);
    dv.setUint8(0, 200); // u8 "c" first in the data
    dv.setUint16(1, 0x7e01, true); // f16 "b" (odd offset: the format allows it)
    dv.setUint16(3, 0x8001, true);
    dv.setFloat32(5, 1.5, true); // f32 "a" last
    dv.setFloat32(9, -0, true);
    dv.setUint32(13, 0x7fa00001, true); // a signalling NaN with a payload
    const header =
      '{"a":{"dtype":"F32","shape":[3],"data_offsets":[5,17]},' +
      '"b":{"shape":[2],"dtype":"F16","data_offsets":[1,5]},"c":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}';
    const path = handBuilt("hand.safetensors", header, data);
    scope(() => {
      const { tensors, metadata } = readSafetensors(path);
      expect(metadata).toEqual({});
      expect([tensors.a.dtype, tensors.a.shape, tensors.b.dtype, tensors.b.shape, tensors.c.shape]).toEqual([
        "f32",
        [3],
        "f16",
        [2],
        [],
      ]);
      expect(Array.from(new Uint32Array(bytesOfTensor(tensors.a).buffer))).toEqual([
        0x3fc00000, 0x80000000, 0x7fa00001,
      ]);
      expect(Array.from(tensors.b.data())).toEqual([0x7e01, 0x8001]);
      expect(Array.from(tensors.c.data())).toEqual([200]);
    });
  });

  const f32x3 = new Uint8Array(12);
  const entry = (o: object = {}) => ({ dtype: "F32", shape: [3], data_offsets: [0, 12], ...o });
  const corrupt: [string, () => string, string][] = [
    [
      "a file shorter than 8 bytes",
      () => writeRaw("short", new Uint8Array(5)),
      "file is 5 bytes, too short for the 8-byte header length",
    ],
    [
      "a header length past the end",
      () => handBuilt("long", { a: entry() }, f32x3, 1000n),
      "header length 1000 runs past the end of the file (75 bytes)",
    ],
    [
      "a 2^64 - 1 header length",
      () => handBuilt("huge", {}, new Uint8Array(0), 2n ** 64n - 1n),
      "header length 18446744073709551615 runs past the end of the file (10 bytes)",
    ],
    [
      "invalid JSON",
      () => handBuilt("json", '{"a": {"dtype": "F32",', new Uint8Array(0)),
      "header is not valid UTF-8 JSON",
    ],
    [
      "invalid UTF-8",
      () => handBuilt("utf8", Buffer.from([0x7b, 0xff, 0x7d]).toString("latin1"), new Uint8Array(0)),
      "header is not valid UTF-8 JSON",
    ],
    [
      "a header that is not an object",
      () => handBuilt("array", "[1, 2]", new Uint8Array(0)),
      "header must be a JSON object, got [1,2]",
    ],
    [
      "an unknown dtype",
      () => handBuilt("dtype", { a: entry({ dtype: "F8_E4M3" }) }, f32x3),
      'tensor "a": unsupported dtype "F8_E4M3" (plait reads F64, F32, F16, BF16, I32, U8)',
    ],
    [
      "a dtype plait does not hold",
      () => handBuilt("i64", { a: entry({ dtype: "I64", data_offsets: [0, 24] }) }, new Uint8Array(24)),
      'unsupported dtype "I64"',
    ],
    [
      "a bad shape",
      () => handBuilt("shape", { a: entry({ shape: [3, -1] }) }, f32x3),
      'tensor "a": shape must be an array of non-negative integers, got',
    ],
    [
      "offsets inconsistent with the shape",
      () => handBuilt("size", { a: entry({ shape: [2, 2] }) }, f32x3),
      'tensor "a": data_offsets [0,12] hold 12 bytes, but F32 of shape [2, 2] needs 16',
    ],
    [
      "reversed offsets",
      () => handBuilt("rev", { a: entry({ data_offsets: [12, 0] }) }, f32x3),
      'tensor "a": data_offsets must be [begin, end] with 0 ≤ begin ≤ end',
    ],
    [
      "offsets past the data",
      () => handBuilt("range", { a: entry({ data_offsets: [4, 16] }) }, f32x3),
      'tensor "a": data_offsets [4,16] run past the end of the data (12 bytes)',
    ],
    [
      "overlapping tensors",
      () => handBuilt("overlap", { a: entry(), b: entry({ shape: [1], data_offsets: [8, 12] }) }, f32x3),
      'tensors "a" [0, 12] and "b" [8, 12] overlap',
    ],
    [
      "a gap",
      () =>
        handBuilt(
          "gap",
          { a: entry({ shape: [1], data_offsets: [0, 4] }), b: entry({ shape: [1], data_offsets: [8, 12] }) },
          f32x3,
        ),
      'gap of 4 bytes before tensor "b" [8, 12]',
    ],
    [
      "a gap at the start",
      () => handBuilt("gap0", { a: entry({ shape: [2], data_offsets: [4, 12] }) }, f32x3),
      'gap of 4 bytes before tensor "a" [4, 12]',
    ],
    [
      "trailing bytes",
      () => handBuilt("trail", { a: entry() }, new Uint8Array(16)),
      "4 trailing bytes after the last tensor's data",
    ],
    [
      "non-string metadata",
      () => handBuilt("meta", { __metadata__: { epoch: 3 }, a: entry() }, f32x3),
      '__metadata__ must map strings to strings, but "epoch" is 3',
    ],
    ["a missing file", () => join(dir, "nope.safetensors"), "cannot read"],
  ];

  for (const [what, make, message] of corrupt) {
    it(`rejects ${what}, naming the file, and allocates nothing`, () => {
      const path = make();
      // a valid tensor beside the bad one must not be allocated either
      const before = runtime().arena.bytesInUse;
      let error: Error | undefined;
      try {
        readSafetensors(path);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message).toContain(`plait: readSafetensors: ${path}`);
      expect(error?.message).toContain(message);
      expect(runtime().arena.bytesInUse).toBe(before);
    });
  }

  it("allocates nothing when a valid tensor precedes a corrupt one", () => {
    const path = handBuilt(
      "partial",
      { a: entry(), b: entry({ dtype: "Q4", data_offsets: [12, 24] }) },
      new Uint8Array(24),
    );
    const before = runtime().arena.bytesInUse;
    expect(() => readSafetensors(path)).toThrow('tensor "b": unsupported dtype "Q4"');
    expect(runtime().arena.bytesInUse).toBe(before);
  });

  it("writes atomically: a failed write leaves the old file and no temporary files", () => {
    const sub = mkdtempSync(join(dir, "atomic-"));
    const path = join(sub, "w.safetensors");
    scope(() => {
      const t = tensorFromBytes([3], "f32", edgeBytes("f32", 3, 1));
      writeSafetensors(path, { w: t });
      const first = readFileSync(path);
      writeSafetensors(path, { w: t, v: t }); // overwrite in place
      expect(referenceRead(path).tensors.v).toBeDefined();
      writeSafetensors(path, { w: t });
      expect(Buffer.compare(readFileSync(path), first)).toBe(0);
      const dead = tensorFromBytes([1], "f32", new Uint8Array(4));
      dead.dispose();
      expect(() => writeSafetensors(path, { w: t, d: dead })).toThrow(
        'plait: writeSafetensors: tensors["d"] was disposed',
      );
      expect(() => writeSafetensors(path, { __metadata__: t })).toThrow("the name __metadata__ is reserved");
      expect(() => writeSafetensors(path, { w: 3 as any })).toThrow('tensors["w"] is not a Tensor');
      expect(() => writeSafetensors(path, { w: t }, { n: 1 as any })).toThrow(
        'plait: writeSafetensors: metadata must map strings to strings, but "n" is 1',
      );
      expect(() => writeSafetensors(join(sub, "missing", "x.safetensors"), { w: t })).toThrow(/ENOENT/);
      expect(Buffer.compare(readFileSync(path), first)).toBe(0);
      expect(readdirSync(sub)).toEqual(["w.safetensors"]);
    });
  });
});

function writeRaw(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}
