import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load, readSafetensors, save, writeSafetensors } from "../src/checkpoint/index.ts";
import { Rng } from "../src/data/index.ts";
import { type DType, runtime, scope, Tensor, type Tree } from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "plait-checkpoint-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `run${dirs++}`, "ckpt");

const ELEMENT: Record<DType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

/** A tensor of random bits, with a NaN payload, -0 and the smallest subnormal at its start (floats). */
function randomTensor(shape: number[], dtype: DType, rng: Rng): Tensor {
  const t = new Tensor(shape, dtype);
  const bytes = new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
  const size = ELEMENT[dtype];
  const edges: Record<number, bigint[]> = {
    8: [0x7ff0000000000001n, 0x8000000000000000n, 1n],
    4: [0x7fc00001n, 0x80000000n, 1n],
    2: [0x7c01n, 0x8000n, 1n],
    1: [],
  };
  for (const [i, v] of edges[size].slice(0, bytes.length / size).entries()) {
    for (let b = 0; b < size; b++) bytes[i * size + b] = Number((v >> BigInt(8 * b)) & 0xffn); // little-endian
  }
  return t;
}

const bits = (t: Tensor) => Buffer.from(new Uint8Array(runtime().memory.buffer, t.ptr, t.byteLength));

/** Deep comparison that tells NaN from NaN-free, -0 from 0, undefined from absent, and tensors by bits. */
function expectSame(got: unknown, want: unknown, path = "state"): void {
  if (want instanceof Tensor) {
    expect(got, path).toBeInstanceOf(Tensor);
    const g = got as Tensor;
    expect([g.dtype, g.shape], path).toEqual([want.dtype, want.shape]);
    expect(Buffer.compare(bits(g), bits(want)), path).toBe(0);
  } else if (Array.isArray(want)) {
    expect(Array.isArray(got), path).toBe(true);
    expect((got as unknown[]).length, path).toBe(want.length);
    for (const [i, w] of want.entries()) expectSame((got as unknown[])[i], w, `${path}[${i}]`);
  } else if (want !== null && typeof want === "object") {
    expect(Object.keys(got as object), path).toEqual(Object.keys(want));
    for (const [k, w] of Object.entries(want)) expectSame((got as any)[k], w, `${path}.${k}`);
  } else expect(Object.is(got, want), `${path}: ${String(got)} vs ${String(want)}`).toBe(true);
}

function sampleState(rng: Rng) {
  const layer = (i: number, o: number, dtype: DType) => ({
    w: randomTensor([i, o], dtype, rng),
    b: randomTensor([o], dtype, rng),
  });
  const params = {
    layers: [layer(784, 17, "f32"), layer(17, 5, "bf16"), layer(5, 3, "f16")],
    table: randomTensor([4, 3], "f64", rng),
    ids: randomTensor([1023], "i32", rng),
    mask: randomTensor([0], "u8", rng),
    scalar: randomTensor([], "f32", rng),
  };
  const slot = () => ({
    layers: params.layers.map((l) => ({
      w: randomTensor([...l.w.shape], "f32", rng),
      b: randomTensor([...l.b.shape], "f32", rng),
    })),
  });
  const gen = new Rng(99);
  gen.normal(); // leaves a spare normal in the state
  return {
    params,
    opt: { step: 12, slots: { m: slot(), v: slot() }, lr: 1e-3, betas: [0.9, 0.999], nesterov: false },
    rng: gen.state(),
    scaler: {
      scale: 65536,
      growthTracker: 0,
      worst: Number.NaN,
      cap: Number.POSITIVE_INFINITY,
      floor: Number.NEGATIVE_INFINITY,
    },
    config: {
      name: "mlp ✓",
      sizes: [784, 17, 5, 3],
      dropout: undefined,
      negZero: -0,
      tiny: 5e-324,
      big: 1.7976931348623157e308,
    },
    nested: [[1, [2, [null, true]]], { "a.b": "dots in keys are fine outside tensors", "": "empty key" }],
    tied: params.layers[0].w, // the same tensor twice: stored once, loaded as one
  };
}

describe("save / load", () => {
  it("round-trips the whole state bit for bit: tensors of every dtype, NaN/±Infinity/-0, undefined, RNG", () => {
    const dir = freshDir();
    scope(() => {
      const state = sampleState(new Rng(1));
      save(dir, state);
      expect(readdirSync(dir).sort()).toEqual(["optimizer.safetensors", "params.safetensors", "state.json"]);
      const back = load<typeof state>(dir);
      expectSame(back, state);
      expect(back.tied).toBe(back.params.layers[0].w);
      const a = Rng.fromState(state.rng);
      const b = Rng.fromState(back.rng);
      expect(Array.from({ length: 100 }, () => b.normal())).toEqual(Array.from({ length: 100 }, () => a.normal()));
    });
  });

  it("names params by tree path and other tensors by their path from the state root", () => {
    const dir = freshDir();
    scope(() => {
      save(dir, sampleState(new Rng(2)));
      const params = readSafetensors(join(dir, "params.safetensors")).tensors;
      expect(Object.keys(params).sort()).toEqual(
        [
          "ids",
          "layers.0.b",
          "layers.0.w",
          "layers.1.b",
          "layers.1.w",
          "layers.2.b",
          "layers.2.w",
          "mask",
          "scalar",
          "table",
        ].sort(),
      );
      const opt = readSafetensors(join(dir, "optimizer.safetensors")).tensors;
      expect(Object.keys(opt)).toHaveLength(12);
      expect(opt["opt.slots.m.layers.0.w"].shape).toEqual([784, 17]);
      const doc = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
      expect(doc.state.opt.step).toBe(12);
      expect(doc.state.scaler.worst).toEqual({ $plait: "number", value: "NaN" });
    });
  });

  it("leaves the arena as it was once the loaded state is dropped", () => {
    const dir = freshDir();
    scope(() => save(dir, sampleState(new Rng(3))));
    const before = runtime().arena.bytesInUse;
    for (let i = 0; i < 3; i++) {
      scope(() => {
        load(dir);
      });
    }
    expect(runtime().arena.bytesInUse).toBe(before);
  });

  it("lets a run continue bit for bit after a save and load", () => {
    // a toy run: every step adds rng noise to the parameters and moments, through f32 memory
    const step = (s: { params: Tree; opt: { step: number; m: Tensor }; rng: Rng }) => {
      const w = ((s.params as any).w as Tensor).data() as Float32Array;
      const m = s.opt.m.data() as Float32Array;
      for (let i = 0; i < w.length; i++) {
        m[i] = 0.9 * m[i] + s.rng.normal();
        w[i] -= 0.01 * m[i] + s.rng.uniform() * 1e-3;
      }
      s.opt.step++;
    };
    const init = () => {
      const rng = new Rng(4);
      return {
        params: { w: randomTensor([33], "f32", rng) },
        opt: { step: 0, m: randomTensor([33], "f32", new Rng(5)) },
        rng,
      };
    };
    const dir = freshDir();
    scope(() => {
      const straight = init();
      for (let i = 0; i < 10; i++) step(straight);
      const resumed = init();
      for (let i = 0; i < 4; i++) step(resumed);
      save(dir, { ...resumed, rng: resumed.rng.state() });
      const loaded = load<any>(dir);
      const cont = { params: loaded.params, opt: loaded.opt, rng: Rng.fromState(loaded.rng) };
      for (let i = 0; i < 6; i++) step(cont);
      expect(cont.opt.step).toBe(10);
      expect(Buffer.compare(bits(cont.params.w), bits(straight.params.w))).toBe(0);
      expect(Buffer.compare(bits(cont.opt.m), bits(straight.opt.m))).toBe(0);
    });
  });

  it("replaces an older checkpoint whole, leaving no temporary directories", () => {
    const dir = freshDir();
    scope(() => {
      save(dir, sampleState(new Rng(6)));
      const small = { params: { w: randomTensor([2], "f32", new Rng(7)) }, step: 1 };
      save(dir, small);
      expect(readdirSync(dir).sort()).toEqual(["params.safetensors", "state.json"]); // no stale optimizer file
      expectSame(load(dir), small);
      expect(readdirSync(join(dir, ".."))).toEqual(["ckpt"]);
    });
  });

  it("refuses to save into a directory that holds other files, and a failed save keeps the old checkpoint", () => {
    const dir = freshDir();
    scope(() => {
      const state = { params: { w: randomTensor([3], "f32", new Rng(8)) } };
      save(dir, state);
      const before = readFileSync(join(dir, "state.json"));
      expect(() => save(dir, { params: {}, bad: new Map() })).toThrow(
        "plait: save: state.bad is a Map; a checkpoint holds tensors, numbers, strings, booleans, null, undefined, arrays and plain objects",
      );
      expect(Buffer.compare(readFileSync(join(dir, "state.json")), before)).toBe(0);
      expect(readdirSync(join(dir, ".."))).toEqual(["ckpt"]);
      const other = join(root, `run${dirs++}`);
      mkdirSync(other, { recursive: true });
      writeFileSync(join(other, "notes.txt"), "mine");
      expect(() => save(other, state)).toThrow(
        `plait: save: ${other} holds files that are not part of a checkpoint (notes.txt)`,
      );
      expect(readdirSync(other)).toEqual(["notes.txt"]);
      expect(() => save(join(other, "notes.txt"), state)).toThrow("is not a directory");
    });
  });

  it("rejects state it cannot save faithfully, naming the path", () => {
    const dir = freshDir();
    scope(() => {
      const t = randomTensor([2], "f32", new Rng(9));
      const u = randomTensor([1], "f32", new Rng(9));
      const dead = randomTensor([2], "f32", new Rng(9));
      dead.dispose();
      const cyclic: any = { params: {} };
      cyclic.self = { back: cyclic };
      const cases: [unknown, string][] = [
        [{ opt: {} }, "plait: save: state.params is missing (the parameter tree)"],
        [[t], "plait: save: state must be a plain object, got an Array"],
        [{ params: { w: dead } }, "plait: save: state.params.w is a disposed tensor"],
        [
          { params: { w: t }, opt: { $plait: 1 } },
          "plait: save: state.opt has the key $plait, which checkpoints reserve",
        ],
        [
          { params: { "a.b": t, a: { b: u } } },
          'plait: save: state.params["a.b"] and state.params.a.b would both be "a.b" in params.safetensors',
        ],
        [cyclic, "plait: save: state.self.back contains itself"],
        [{ params: {}, n: 10n }, "plait: save: state.n is bigint 10"],
        [{ params: {}, f: () => 1 }, "plait: save: state.f is a function"],
        [{ params: {}, rng: new Rng() }, "state.rng is a Rng; a checkpoint holds"],
        [{ params: {}, x: new Float32Array(2) }, "state.x is a Float32Array"],
      ];
      for (const [state, message] of cases) expect(() => save(dir, state as any)).toThrow(message);
      expect(existsSync(join(dir, ".."))).toBe(false); // checked before anything touched the disk
    });
  });

  describe("rejects damaged checkpoints without allocating", () => {
    const make = () => {
      const dir = freshDir();
      scope(() => save(dir, sampleState(new Rng(10))));
      return dir;
    };
    const rehash = (dir: string, file: string) => {
      const doc = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
      const data = readFileSync(join(dir, file));
      doc.files[file] = { bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
      writeFileSync(join(dir, "state.json"), JSON.stringify(doc));
    };
    const editState = (dir: string, edit: (doc: any) => void) => {
      const doc = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
      edit(doc);
      writeFileSync(join(dir, "state.json"), JSON.stringify(doc));
    };
    const cases: [string, (dir: string) => void, string][] = [
      ["no state.json", (d) => rmSync(join(d, "state.json")), "no checkpoint here (state.json is missing)"],
      ["a missing tensor file", (d) => rmSync(join(d, "optimizer.safetensors")), "cannot read"],
      [
        "a tensor file changed after the save (an interrupted overwrite)",
        (d) => {
          const p = join(d, "params.safetensors");
          const b = readFileSync(p);
          b[b.length - 1] ^= 1;
          writeFileSync(p, b);
        },
        "does not match state.json",
      ],
      [
        "a truncated tensor file",
        (d) => {
          const p = join(d, "params.safetensors");
          writeFileSync(p, readFileSync(p).subarray(0, 100));
        },
        "does not match state.json",
      ],
      ["state.json that is not JSON", (d) => writeFileSync(join(d, "state.json"), "{ nope"), "state.json:"],
      [
        "another format",
        (d) => editState(d, (doc) => (doc.version = 2)),
        "state.json is not a plait-checkpoint version 1 file",
      ],
      [
        "an unknown file",
        (d) => editState(d, (doc) => (doc.files["../x"] = {})),
        "state.json lists an unknown file ../x",
      ],
      [
        "a reference to a tensor the file lacks",
        (d) => editState(d, (doc) => (doc.state.params.table.key = "tabel")),
        'state.params.table refers to tensor "tabel" of params.safetensors, which does not hold it',
      ],
      [
        "a dtype that differs from the file",
        (d) => editState(d, (doc) => (doc.state.params.layers[1].w.dtype = "f16")),
        "state.params.layers[1].w is f16[17, 5] in state.json but bf16[17, 5] in params.safetensors",
      ],
      [
        "a shape that differs from the file",
        (d) => editState(d, (doc) => (doc.state.params.ids.shape = [1024])),
        "state.params.ids is i32[1024] in state.json but i32[1023]",
      ],
      [
        "a tensor file with tensors state.json does not use",
        (d) => {
          const p = join(d, "params.safetensors");
          scope(() =>
            writeSafetensors(p, { ...readSafetensors(p).tensors, extra: randomTensor([1], "u8", new Rng(1)) }),
          );
          rehash(d, "params.safetensors");
        },
        "params.safetensors holds tensors that state.json does not use: extra",
      ],
      [
        "a malformed tag",
        (d) => editState(d, (doc) => (doc.state.scaler.worst = { $plait: "number", value: "1e999" })),
        'state.json: state.scaler.worst is a malformed $plait value {"$plait":"number","value":"1e999"}',
      ],
      [
        "an unknown tag",
        (d) => editState(d, (doc) => (doc.state.x = { $plait: "date" })),
        "state.x is a malformed $plait value",
      ],
      [
        "a corrupt safetensors header",
        (d) => {
          const p = join(d, "optimizer.safetensors");
          const b = readFileSync(p);
          b.writeBigUInt64LE(2n ** 40n);
          writeFileSync(p, b);
          rehash(d, "optimizer.safetensors");
        },
        "optimizer.safetensors: header length 1099511627776 runs past the end of the file",
      ],
    ];
    for (const [what, damage, message] of cases) {
      it(what, () => {
        const dir = make();
        damage(dir);
        const before = runtime().arena.bytesInUse;
        expect(() => load(dir)).toThrow(message);
        expect(() => load(dir)).toThrow(/^plait: load: /);
        expect(runtime().arena.bytesInUse).toBe(before);
      });
    }
  });
});
