import { describe, expect, it } from "vitest";
import { arrayDataset, Batcher, DataLoader, defaultCollate, loader } from "../src/data/index.ts";
import { scope, Tensor, tensor } from "../src/index.ts";

// Samples that carry their own index, so every batch can be checked against the Batcher's indices.
const indexed = (n: number) =>
  arrayDataset(Array.from({ length: n }, (_, i) => ({ x: Float32Array.of(i, -i), y: i % 3, id: i })));

describe("DataLoader", () => {
  it("batches every rank exactly as the Batcher's DistributedSampler rules say (shuffle, pad, drop_last)", () => {
    for (const [n, worldSize, batchSize, dropLast, shuffle] of [
      [10, 1, 4, false, true],
      [10, 3, 2, false, true],
      [10, 3, 2, true, true],
      [11, 2, 3, false, false],
      [7, 4, 1, true, true],
    ] as const) {
      for (let rank = 0; rank < worldSize; rank++) {
        const opts = { batchSize, worldSize, rank, dropLast, shuffle, seed: 9 };
        const l = loader(indexed(n), opts);
        const ref = new Batcher(n, opts);
        expect(l.batchesPerEpoch).toBe(ref.batchesPerEpoch);
        for (const epoch of [0, 3]) {
          const e = l.epoch(epoch);
          const want = ref.batches(epoch);
          expect(e.count).toBe(want.length);
          for (let i = 0; i < e.count; i++) {
            scope(() => {
              const b = e.get(i);
              expect(b.id.toArray()).toEqual([...want[i]]);
              expect(b.x.shape).toEqual([want[i].length, 2]);
              expect(b.x.toArray()).toEqual([...want[i]].flatMap((k) => [k, -k]));
              expect(b.y.dtype).toBe("i32");
              expect(b.y.toArray()).toEqual([...want[i]].map((k) => k % 3));
              expect(e.size(b, i)).toBe(want[i].length);
            });
          }
        }
      }
    }
  });

  it("shuffles with seed + epoch: another epoch or seed gives another order, the same ones the same", () => {
    const ids = (seed: number, epoch: number) =>
      scope(() => loader(indexed(50), { batchSize: 50, seed }).epoch(epoch).get(0).id.toArray());
    expect(ids(1, 0)).toEqual(ids(1, 0));
    expect(ids(1, 0)).not.toEqual(ids(1, 1));
    expect(ids(1, 0)).not.toEqual(ids(2, 0));
    expect([...ids(1, 1)].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("default collate stacks tensors (any shape and dtype), typed arrays, numbers, arrays and objects", () => {
    scope(() => {
      const a = tensor([
        [1, 2],
        [3, 4],
      ]);
      const b = tensor([
        [5, 6],
        [7, 8],
      ]);
      const out = defaultCollate([
        { t: a, pair: [1.5, Int32Array.of(1)] },
        { t: b, pair: [2, Int32Array.of(2)] },
      ]);
      expect(out.t.shape).toEqual([2, 2, 2]);
      expect(out.t.toArray()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(out.pair[0].dtype).toBe("f32"); // 1.5 is not an integer
      expect(out.pair[0].toArray()).toEqual([1.5, 2]);
      expect(out.pair[1].dtype).toBe("i32");
      expect(out.pair[1].shape).toEqual([2, 1]);
      const f64 = defaultCollate([tensor([1], [1], { dtype: "f64" })]);
      expect(f64.dtype).toBe("f64");
      expect(f64.shape).toEqual([1, 1]);
    });
  });

  it("a custom collate gets the samples in batch order", () => {
    const l = loader(indexed(6), { batchSize: 4, shuffle: false, collate: (s) => s.map((x) => x.id) });
    expect(l.epoch(0).get(0)).toEqual([0, 1, 2, 3]);
    expect(l.epoch(0).get(1)).toEqual([4, 5]);
  });

  it("bad input: empty dataset, no batch left, mismatched samples, unknown leaves, options", () => {
    expect(() => loader(arrayDataset([]), { batchSize: 2 })).toThrow(
      "plait: loader: the dataset is empty (length 0); a loader needs at least one sample",
    );
    expect(() => loader(indexed(3), { batchSize: 1, worldSize: 4, rank: 0, dropLast: true })).toThrow(
      "plait: loader: with dropLast, 3 samples over 4 ranks in batches of 1 leave every rank no batch",
    );
    expect(() => loader({ length: -1, get: () => 0 }, { batchSize: 1 })).toThrow(
      "plait: loader: dataset.length must be an integer ≥ 0, got -1",
    );
    expect(() => loader(indexed(3), { batchSize: 1, colate: 1 } as never)).toThrow(
      "plait: loader: unknown option colate; known: batchSize, shuffle, seed, dropLast, rank, worldSize, collate",
    );
    scope(() => {
      expect(() => defaultCollate([{ x: tensor([1, 2]) }, { x: tensor([1, 2, 3]) }])).toThrow(
        "plait: defaultCollate: sample.x of sample 1 is a tensor f32[3], but of sample 0 a tensor f32[2]",
      );
      expect(() => defaultCollate([{ x: 1 }, { y: 1 }])).toThrow(
        "plait: defaultCollate: sample of sample 1 is an object with keys [y], but of sample 0 an object with keys [x]",
      );
      expect(() => defaultCollate(["a"])).toThrow(
        "plait: defaultCollate: sample is string a; the default collate stacks tensors, typed arrays and numbers (inside arrays and plain objects): pass a collate function for other samples",
      );
      expect(() => new DataLoader(indexed(2), { batchSize: 1 }).epoch(0).get(5)).toThrow(
        "plait: loader: batch 5 does not exist; epoch 0 has 2",
      );
    });
    expect(Tensor).toBeDefined();
  });
});
