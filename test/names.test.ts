// The first-names data set of the gpt demo: counts, vocabulary, the seeded split and encoding.
import { describe, expect, it } from "vitest";
import { encodeNames, loadNames } from "../src/data/names.ts";

describe("loadNames", () => {
  const names = loadNames();

  it("merges the two lists (8,849 names), keeps each name once and splits 90/10", () => {
    expect(names.merged).toBe(8849);
    const all = [...names.train, ...names.val];
    expect(all.length).toBe(8422); // 427 names are in both lists
    expect(new Set(all).size).toBe(all.length);
    expect(names.val.length).toBe(842);
    expect(names.train.length).toBe(7580);
    expect(all.every((s) => s === s.toLowerCase())).toBe(true);
  });

  it("has a vocabulary of 28 tokens: the end marker, '-' and the 26 letters", () => {
    expect(names.vocab.length).toBe(28);
    expect(names.vocab.join("")).toBe(".-abcdefghijklmnopqrstuvwxyz");
  });

  it("splits by seed: the same seed gives the same split, another seed another", () => {
    expect(loadNames({ seed: 0 }).val).toEqual(names.val);
    const other = loadNames({ seed: 1 }).val;
    expect(other).not.toEqual(names.val);
    expect(new Set([...other, ...loadNames({ seed: 1 }).train]).size).toBe(8422);
  });

  it("rejects bad options naming them", () => {
    expect(() => loadNames({ valFraction: 1 })).toThrow(/valFraction must be in \(0, 1\), got 1/);
    expect(() => loadNames({ seed: -1 })).toThrow(/seed must be a non-negative integer, got -1/);
    expect(() => loadNames({ sed: 1 } as never)).toThrow(/sed/);
  });
});

describe("encodeNames", () => {
  const vocab = [".", "a", "b"];

  it("writes the start marker, the characters, the end marker, then the pad", () => {
    expect(Array.from(encodeNames(["ab", "b"], vocab, 4, -1))).toEqual([0, 1, 2, 0, -1, 0, 2, 0, -1, -1]);
  });

  it("rejects a name too long for the context and a character outside the vocabulary", () => {
    expect(() => encodeNames(["abab"], vocab, 4)).toThrow(/"abab" has 4 characters; context 4 fits at most 3/);
    expect(() => encodeNames(["ac"], vocab, 4)).toThrow(/"c" in "ac" is not in the vocabulary/);
  });

  it("fits every name of the data set in the demo's context of 16", () => {
    const { train, val, vocab: v } = loadNames();
    expect(() => encodeNames([...train, ...val], v, 16)).not.toThrow();
  });
});
