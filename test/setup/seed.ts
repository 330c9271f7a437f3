// Runs before every test file (vitest setupFiles): random test inputs come from a fixed seed, so
// a failure reproduces. fast-check's properties all start from PLAIT_TEST_SEED (default below;
// a failing property also prints the seed and path that reproduce it), and Math.random is a
// seeded generator, restarted for each test file.
import fc from "fast-check";

const DEFAULT_SEED = 0x5eed;

function testSeed(): number {
  const env = process.env.PLAIT_TEST_SEED;
  if (env === undefined || env === "") return DEFAULT_SEED;
  const seed = Number(env);
  if (!Number.isSafeInteger(seed)) throw new Error(`PLAIT_TEST_SEED must be an integer, got ${JSON.stringify(env)}`);
  return seed;
}

const seed = testSeed();
fc.configureGlobal({ seed });

/** mulberry32: a small 32-bit generator, enough for test inputs. */
function mulberry32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

Math.random = mulberry32(seed);
