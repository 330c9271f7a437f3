// 2×2 max pooling with stride 2 over NCHW planes (the CNN's), f32: out[p, oy, ox] = the max of
// x[p, 2oy..2oy+1, 2ox..2ox+1] and arg[...] its flat index in x (the first at ties; a NaN wins
// over numbers, so a window with a NaN gives NaN); and the backward scatter dx[arg[i]] += g[i].
// Scalar: four compares per output, nothing for SIMD lanes to share without shuffles.
// Reference: the TypeScript loops in src/ops/pool.ts (f64 and other windows), tested against
// the definition in test/ops-conv.test.ts.

export function max_pool2x2_f32(x: usize, out: usize, arg: usize, planes: i32, h: i32, w: i32, oh: i32, ow: i32): void {
  let o: usize = 0;
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < oh; oy++) {
      const r0 = p * h * w + 2 * oy * w;
      for (let ox = 0; ox < ow; ox++, o++) {
        let at = r0 + 2 * ox;
        let best = load<f32>(x + (<usize>at << 2));
        for (let k = 1; k < 4; k++) {
          const i = r0 + 2 * ox + (k >> 1) * w + (k & 1);
          const v = load<f32>(x + (<usize>i << 2));
          if (v > best || (v != v && best == best)) {
            best = v;
            at = i;
          }
        }
        store<f32>(out + (o << 2), best);
        store<i32>(arg + (o << 2), at);
      }
    }
  }
}

/** dx[arg[i]] += g[i] for i < count (dx zeroed by the caller for a fresh gradient). */
export function max_pool_scatter_f32(g: usize, arg: usize, dx: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const o = <usize>i << 2;
    const p = dx + (<usize>load<i32>(arg + o) << 2);
    store<f32>(p, load<f32>(p) + load<f32>(g + o));
  }
}
