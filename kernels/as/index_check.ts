// Index validation for integer labels and embedding ids: the position of the first value of
// ids[0..n) outside [0, limit), or -1 when all are inside. One unsigned compare catches
// negative values too. Reference: the positions named in test/ops-loss.test.ts and
// test/ops-embedding.test.ts.

export function first_outside_i32(ids: usize, n: i32, limit: i32): i32 {
  const vlimit = i32x4.splat(limit);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    if (v128.any_true(i32x4.ge_u(v128.load(ids + (<usize>i << 2)), vlimit))) break;
  }
  for (; i < n; i++) {
    if (<u32>load<i32>(ids + (<usize>i << 2)) >= <u32>limit) return i;
  }
  return -1;
}
