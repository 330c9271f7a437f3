// Flush-to-zero for optimizer state. x86 cores take a microcode assist for every arithmetic
// operation on a subnormal float (measured here: an SGD-momentum pass over 200K subnormal
// buffer entries ran 25× slower), and WebAssembly cannot set the FTZ/DAZ bits. A momentum or
// moment entry whose gradient stays zero decays by β every step until it is subnormal (after
// ~850 steps from 1e-8 with β = 0.9), so long runs slowed down over time. The optimizers store
// their state with subnormals replaced by a zero of the same sign, which is what the FTZ bit does.
// Reference: `flushSubnormal` in test/optim.test.ts.

// @ts-ignore: decorator
@inline
function minNormal<T>(): T {
  return sizeof<T>() == 8 ? <T>2.2250738585072014e-308 : <T>1.1754943508222875e-38;
}

/** Each lane of `x` whose magnitude is below the smallest normal, replaced by ±0 (sign kept; NaN kept). */
// @ts-ignore: decorator
@inline
export function flushSubnormals<T>(x: v128): v128 {
  const tiny = v128.lt<T>(v128.abs<T>(x), v128.splat<T>(minNormal<T>()));
  const magnitude = sizeof<T>() == 8 ? i64x2.splat(0x7fffffffffffffff) : i32x4.splat(0x7fffffff);
  return v128.andnot(x, v128.and(tiny, magnitude));
}

/** `x`, or a zero of its sign when it is subnormal. */
// @ts-ignore: decorator
@inline
export function flushSubnormal<T>(x: T): T {
  return abs<T>(x) < minNormal<T>() ? copysign<T>(0, x) : x;
}
