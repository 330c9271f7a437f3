import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Batcher, gatherBatch, gatherRows, Rng } from "../src/data/index.ts";
import { portableLog } from "../src/data/rng.ts";
import { runtime, scope } from "../src/index.ts";

/** PCG32 (pcg32_random_r / pcg32_srandom_r of pcg-c-basic) in BigInt: a reference written from the paper. */
class BigPcg32 {
  private state = 0n;
  private inc: bigint;
  constructor(seed: bigint, stream: bigint) {
    this.inc = ((stream << 1n) | 1n) & 0xffffffffffffffffn;
    this.next();
    this.state = (this.state + seed) & 0xffffffffffffffffn;
    this.next();
  }
  next(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & 0xffffffffffffffffn;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << (-rot & 31))) >>> 0;
  }
}

const draws = (r: Rng, n: number) => Array.from({ length: n }, () => r.nextU32());

describe("Rng (PCG32)", () => {
  it("reproduces the published pcg32 output for seed 42, stream 54", () => {
    // pcg-c-basic's pcg32-demo, pcg32_srandom_r(&rng, 42u, 54u): state 0x185706b82c2e03f8, inc 109,
    // then 0xa15c02b7 0x7b47f409 0xba1d3330 0x83d2f293 0xbfa4784b 0xcbed606e (www.pcg-random.org).
    const r = new Rng(42, 54);
    expect(r.state()).toEqual({
      algorithm: "pcg32",
      state: "185706b82c2e03f8",
      inc: "000000000000006d",
      spareNormal: null,
    });
    expect(draws(r, 6)).toEqual([0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
  });

  it("matches a BigInt reference for seeds and streams across the 53-bit range", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (seed, stream) => {
        const ref = new BigPcg32(BigInt(seed), BigInt(stream));
        expect(draws(new Rng(seed, stream), 200)).toEqual(Array.from({ length: 200 }, () => ref.next()));
      }),
      {
        numRuns: 50,
        examples: [
          [0, 0],
          [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
          [2 ** 32, 2 ** 32 - 1],
        ],
      },
    );
  });

  it("rejects seeds and streams that are not non-negative safe integers", () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expect(() => new Rng(bad)).toThrow(`plait: Rng seed must be a non-negative safe integer, got ${bad}`);
      expect(() => new Rng(0, bad)).toThrow(`plait: Rng stream must be a non-negative safe integer, got ${bad}`);
    }
  });

  it("uniform() lies in [0, 1) with 53-bit resolution and the right moments", () => {
    const r = new Rng(7);
    const n = 200_000;
    let sum = 0;
    let sq = 0;
    let fine = 0; // values with bits below 2^-32: impossible from a single 32-bit draw
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      if (!(u >= 0 && u < 1)) throw new Error(`uniform() gave ${u}`);
      sum += u;
      sq += u * u;
      if ((u * 2 ** 32) % 1 !== 0) fine++;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sq / n - 1 / 3)).toBeLessThan(0.005);
    expect(fine).toBeGreaterThan(n * 0.99);
  });

  it("int(n) covers [0, n) evenly and has no modulo bias", () => {
    const r = new Rng(3);
    for (const n of [1, 2, 3, 7, 2 ** 31 + 1, 2 ** 32]) {
      for (let i = 0; i < 1000; i++) {
        const v = r.int(n);
        if (!(Number.isInteger(v) && v >= 0 && v < n)) throw new Error(`int(${n}) gave ${v}`);
      }
    }
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[r.int(6)]++;
    const chi2 = counts.reduce((a, c) => a + (c - 10_000) ** 2 / 10_000, 0);
    expect(chi2).toBeLessThan(20.5); // 5 degrees of freedom: p ≈ 0.001
    // n = 3·2^30: r mod n would put half of all draws below 2^30 instead of a third.
    let low = 0;
    for (let i = 0; i < 30_000; i++) if (r.int(3 * 2 ** 30) < 2 ** 30) low++;
    expect(Math.abs(low / 30_000 - 1 / 3)).toBeLessThan(0.02);
  });

  it("int(n) rejects n outside [1, 2^32] naming it", () => {
    const r = new Rng();
    for (const bad of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN]) {
      expect(() => r.int(bad)).toThrow(`plait: Rng.int(n): n must be an integer in [1, 2^32], got ${bad}`);
    }
  });

  it("normal() has mean 0, variance 1, kurtosis 3 and the normal quantiles", () => {
    const r = new Rng(11);
    const n = 400_000;
    let s1 = 0;
    let s2 = 0;
    let s4 = 0;
    let below1 = 0;
    let within2 = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s1 += z;
      s2 += z * z;
      s4 += z ** 4;
      if (z < 1) below1++;
      if (Math.abs(z) < 2) within2++;
    }
    expect(Math.abs(s1 / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.01);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.06);
    expect(Math.abs(below1 / n - 0.841345)).toBeLessThan(0.003);
    expect(Math.abs(within2 / n - 0.9545)).toBeLessThan(0.002);
  });

  it("portableLog agrees with Math.log to about an ulp over every exponent", () => {
    const r = new Rng(5);
    let worst = 0;
    for (let e = -1022; e <= 1023; e++) {
      for (let i = 0; i < 50; i++) {
        const x = (1 + r.uniform()) * 2 ** e;
        const err = Math.abs(portableLog(x) - Math.log(x)) / (Math.abs(Math.log(x)) * 2 ** -52 || 2 ** -1074);
        worst = Math.max(worst, err);
      }
    }
    expect(worst).toBeLessThan(2);
    expect(portableLog(1)).toBe(0);
    expect(portableLog(2)).toBe(Math.LN2);
    expect(portableLog(Math.SQRT2 * (1 + 2 ** -52))).toBeCloseTo(Math.LN2 / 2, 15);
  });

  it("permutation(n) is a permutation, seeded, for n = 0, 1, 3, 1023", () => {
    for (const n of [0, 1, 3, 1023]) {
      const p = new Rng(9).permutation(n);
      expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(new Rng(9).permutation(n)).toEqual(p);
    }
    expect(new Rng(9).permutation(1023)).not.toEqual(new Rng(10).permutation(1023));
    expect(() => new Rng().permutation(-1)).toThrow(
      "plait: Rng.permutation(n): n must be an integer in [0, 2^31 - 1], got -1",
    );
  });

  it("state() survives JSON and restores the sequence bit for bit, a pending normal included", () => {
    const r = new Rng(123, 4);
    r.uniform();
    r.normal(); // leaves the pair's second value pending
    const saved = JSON.parse(JSON.stringify(r.state()));
    expect(saved.spareNormal).not.toBeNull();
    const s = Rng.fromState(saved);
    const mix = (g: Rng) => Array.from({ length: 300 }, (_, i) => [g.normal(), g.uniform(), g.int(i + 1), g.nextU32()]);
    expect(mix(s)).toEqual(mix(r));
  });

  it("fromState rejects malformed states", () => {
    const good = new Rng(1).state();
    expect(() => Rng.fromState({ ...good, algorithm: "xorshift" } as any)).toThrow(
      /expected an object with algorithm "pcg32"/,
    );
    expect(() => Rng.fromState({ ...good, state: "123" })).toThrow(/state and inc must be 16 hex digits, inc odd/);
    expect(() => Rng.fromState({ ...good, inc: "0000000000000002" })).toThrow(/inc odd/);
    expect(() => Rng.fromState({ ...good, spareNormal: Number.NaN })).toThrow(
      /spareNormal must be a finite number or null/,
    );
    expect(() => Rng.fromState(null as any)).toThrow(/Rng.fromState/);
  });

  it("fork() gives deterministic streams unlike the parent and each other", () => {
    const a = new Rng(77);
    const b = new Rng(77);
    const fa = a.fork();
    const fb = b.fork();
    expect(draws(fa, 50)).toEqual(draws(fb, 50));
    const f2 = a.fork();
    const seqs = [draws(a, 50), draws(f2, 50), draws(new Rng(77).fork(), 50)];
    expect(seqs[0]).not.toEqual(seqs[1]);
    expect(seqs[1]).not.toEqual(seqs[2]);
  });
});

/** torch.utils.data.DistributedSampler.__iter__, written out on lists (the reference for sharding). */
function torchShard(perm: number[], rank: number, world: number, dropLast: boolean): number[] {
  const n = perm.length;
  let indices = [...perm];
  const numSamples = dropLast && n % world !== 0 ? Math.ceil((n - world) / world) : Math.ceil(n / world);
  const total = numSamples * world;
  if (!dropLast) {
    const pad = total - n;
    if (pad <= n) indices = indices.concat(indices.slice(0, pad));
    else
      indices = indices.concat(
        Array.from({ length: Math.ceil(pad / n) }, () => indices)
          .flat()
          .slice(0, pad),
      );
  } else indices = indices.slice(0, total);
  return indices.filter((_, i) => i % world === rank);
}

const batcherArgs = fc.record({
  n: fc.integer({ min: 0, max: 300 }),
  batchSize: fc.integer({ min: 1, max: 40 }),
  worldSize: fc.integer({ min: 1, max: 9 }),
  seed: fc.maxSafeNat(),
  epoch: fc.nat(1000),
  dropLast: fc.boolean(),
  shuffle: fc.boolean(),
});

describe("Batcher", () => {
  it("worldSize 1, no dropLast: every index exactly once per epoch, in full batches but the last", () => {
    fc.assert(
      fc.property(batcherArgs, ({ n, batchSize, seed, epoch, shuffle }) => {
        const b = new Batcher(n, { batchSize, seed, shuffle });
        const batches = b.batches(epoch);
        expect(batches.length).toBe(Math.ceil(n / batchSize));
        batches.forEach((x, i) => {
          expect(x.length).toBe(i < batches.length - 1 ? batchSize : n - batchSize * i);
        });
        const all = batches.flatMap((x) => Array.from(x)).sort((p, q) => p - q);
        expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
      { numRuns: 200 },
    );
  });

  it("shards like torch's DistributedSampler: pad or cut, then rank r takes r, r + W, ...", () => {
    fc.assert(
      fc.property(batcherArgs, ({ n, batchSize, worldSize, seed, epoch, dropLast, shuffle }) => {
        const perm = Array.from(new Batcher(n, { batchSize, seed, shuffle }).order(epoch));
        for (let rank = 0; rank < worldSize; rank++) {
          const b = new Batcher(n, { batchSize, seed, shuffle, dropLast, rank, worldSize });
          expect(Array.from(b.indices(epoch))).toEqual(torchShard(perm, rank, worldSize, dropLast));
        }
      }),
      { numRuns: 200 },
    );
  });

  it("ranks get equal batch counts, and together cover every index (all of them unless dropLast)", () => {
    fc.assert(
      fc.property(batcherArgs, ({ n, batchSize, worldSize, seed, epoch, dropLast }) => {
        const seen = new Array(n).fill(0);
        const counts = new Set<number>();
        for (let rank = 0; rank < worldSize; rank++) {
          const b = new Batcher(n, { batchSize, seed, dropLast, rank, worldSize });
          const batches = b.batches(epoch);
          expect(batches.length).toBe(b.batchesPerEpoch);
          counts.add(batches.length);
          for (const x of batches) {
            expect(x.length).toBeLessThanOrEqual(batchSize);
            if (dropLast) expect(x.length).toBe(batchSize);
            for (const i of x) seen[i]++;
          }
        }
        expect(counts.size).toBe(1);
        if (dropLast) {
          expect(seen.every((c) => c <= 1)).toBe(true);
          const kept = Math.floor(Math.floor(n / worldSize) / batchSize) * batchSize * worldSize;
          expect(seen.reduce((a, c) => a + c, 0)).toBe(kept);
        } else {
          expect(seen.every((c) => c >= 1)).toBe(true);
          expect(seen.reduce((a, c) => a + c, 0)).toBe(Math.ceil(n / worldSize) * worldSize);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("is deterministic in its seed and epoch, and varies with both", () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 500 }), fc.maxSafeNat(), fc.nat(1000), (n, seed, epoch) => {
        const order = (s: number, e: number) => Array.from(new Batcher(n, { batchSize: 8, seed: s }).order(e));
        expect(order(seed, epoch)).toEqual(order(seed, epoch));
        expect(order(seed, epoch)).not.toEqual(order(seed, epoch + 1));
        expect(order(seed, epoch)).not.toEqual(order(seed === 0 ? 1 : seed - 1, epoch));
      }),
      { numRuns: 100 },
    );
  });

  it("without shuffle, rank r of W takes r, r + W, ... in order", () => {
    const b = new Batcher(10, { batchSize: 2, shuffle: false, rank: 1, worldSize: 4 });
    expect(b.batches(5).map((x) => Array.from(x))).toEqual([[1, 5], [9]]);
    expect(Array.from(new Batcher(10, { batchSize: 2, shuffle: false, rank: 3, worldSize: 4 }).indices())).toEqual([
      3, 7, 1,
    ]);
  });

  it("rejects bad sizes, ranks and epochs naming the value", () => {
    const msg = (what: string, range: string, got: string) =>
      `plait: Batcher: ${what} must be an integer in ${range}, got ${got}`;
    expect(() => new Batcher(10, { batchSize: 0 })).toThrow(msg("batchSize", "[1, 2147483647]", "0"));
    expect(() => new Batcher(10, { batchSize: 2.5 })).toThrow(msg("batchSize", "[1, 2147483647]", "2.5"));
    expect(() => new Batcher(10, { batchSize: "8" as any })).toThrow(msg("batchSize", "[1, 2147483647]", "8"));
    expect(() => new Batcher(10, { batchSize: 2, worldSize: 0 })).toThrow(msg("worldSize", "[1, 2147483647]", "0"));
    expect(() => new Batcher(10, { batchSize: 2, rank: 4, worldSize: 4 })).toThrow(msg("rank", "[0, 3]", "4"));
    expect(() => new Batcher(10, { batchSize: 2, rank: -1 })).toThrow(msg("rank", "[0, 0]", "-1"));
    expect(() => new Batcher(-1, { batchSize: 2 })).toThrow(msg("n", "[0, 2147483647]", "-1"));
    expect(() => new Batcher(10, { batchSize: 2, seed: -3 })).toThrow(msg("seed", "[0, 9007199254740991]", "-3"));
    expect(() => new Batcher(10, { batchSize: 2 }).batches(-1)).toThrow(msg("epoch", "[0, 9007199254740991]", "-1"));
  });
});

const SIZES = [0, 1, 3, 4, 5, 17, 1023, 100_003];

/** Float32 values with edge cases: NaN with payloads, ±inf, ±0, subnormals, huge. */
function edgyF32(n: number, rng: Rng): Float32Array {
  const bits = new Uint32Array(n);
  const special = [0x7fc00001, 0xffa00000, 0x7f800000, 0xff800000, 0, 0x80000000, 1, 0x807fffff, 0x7f7fffff];
  for (let i = 0; i < n; i++) bits[i] = i < special.length ? special[i] : rng.nextU32();
  return new Float32Array(bits.buffer);
}

describe("gatherRows / gatherBatch", () => {
  it("copies rows bit for bit for every row length and batch size", () => {
    const rng = new Rng(21);
    for (const row of SIZES.filter((s) => s > 0 && s < 100_000)) {
      for (const batch of SIZES.filter((s) => s * row <= 2_000_000)) {
        const rows = 1 + (batch % 7);
        const data = edgyF32(rows * row, rng);
        const idx = Int32Array.from({ length: batch }, () => rng.int(rows));
        scope(() => {
          const t = gatherRows(data, [row], idx);
          expect(t.shape).toEqual([batch, row]);
          expect(t.dtype).toBe("f32");
          const got = new Uint32Array(t.data().slice().buffer);
          const src = new Uint32Array(data.buffer);
          let wrong = 0;
          for (let b = 0; b < batch; b++) {
            for (let j = 0; j < row; j++) if (got[b * row + j] !== src[idx[b] * row + j]) wrong++;
          }
          expect(wrong).toBe(0);
        });
      }
    }
  });

  it("keeps the dtype and row shape: i32 scalars, f64 and u8 matrices", () => {
    scope(() => {
      const labels = gatherRows(Int32Array.from([5, -7, 2 ** 31 - 1]), [], [2, 0, 1, 2]);
      expect(labels.shape).toEqual([4]);
      expect(labels.dtype).toBe("i32");
      expect(Array.from(labels.data())).toEqual([2 ** 31 - 1, 5, -7, 2 ** 31 - 1]);
      const f = gatherRows(Float64Array.from([1, 2, 3, 4, -0, Number.MIN_VALUE]), [1, 2], [2, 0]);
      expect(f.shape).toEqual([2, 1, 2]);
      expect(Array.from(f.data())).toEqual([-0, Number.MIN_VALUE, 1, 2]);
      expect(Object.is(f.data()[0], -0)).toBe(true);
      const u = gatherRows(Uint8Array.from([1, 2, 3, 255]), [2], [1]);
      expect(u.dtype).toBe("u8");
      expect(Array.from(u.data())).toEqual([3, 255]);
    });
  });

  it("gatherBatch returns images [B, 784] f32 and labels [B] i32", () => {
    const n = 5;
    const images = Float32Array.from({ length: n * 784 }, (_, i) => i / 7);
    const labels = Int32Array.from([4, 3, 2, 1, 0]);
    scope(() => {
      const { images: x, labels: y } = gatherBatch({ images, labels, n }, [3, 3, 0]);
      expect(x.shape).toEqual([3, 784]);
      expect(y.shape).toEqual([3]);
      expect(Array.from(y.data())).toEqual([1, 1, 4]);
      expect(Array.from(x.data().subarray(784, 786))).toEqual([images[3 * 784], images[3 * 784 + 1]]);
    });
  });

  it("rejects bad indices and data without allocating", () => {
    const before = runtime().arena.bytesInUse;
    const data = new Float32Array(12);
    expect(() => gatherRows(data, [4], [0, 3])).toThrow(
      "plait: gatherRows: indices[1] is 3, expected an integer in [0, 3)",
    );
    expect(() => gatherRows(data, [4], [-1])).toThrow("indices[0] is -1, expected an integer in [0, 3)");
    expect(() => gatherRows(data, [4], [0.5])).toThrow("indices[0] is 0.5");
    expect(() => gatherRows(data, [5], [0])).toThrow(
      "plait: gatherRows: data has 12 elements, expected a whole number of rows of shape [5]",
    );
    expect(() => gatherRows(new Uint16Array(4) as any, [1], [0])).toThrow(/data must be a Float32Array.*Uint16Array/);
    const ds = { images: new Float32Array(10), labels: new Int32Array(3), n: 2 };
    expect(() => gatherBatch(ds, [0])).toThrow(/gatherBatch: dataset has n = 2, 3 labels and 10 image values/);
    expect(() => gatherBatch({ ...ds, labels: new Int32Array(2) }, [2])).toThrow("gatherBatch: indices[0] is 2");
    expect(runtime().arena.bytesInUse).toBe(before);
  });
});
