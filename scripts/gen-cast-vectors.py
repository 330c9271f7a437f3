#!/usr/bin/env python3
"""Writes the reference vectors for plait's dtype casts into test/vectors/ (test/cast.test.ts reads them).

    python3 scripts/gen-cast-vectors.py        # numpy >= 1.20; deterministic (fixed seed)

Every file is little-endian: an 8-byte magic b"PLAITVEC", a u32 version (1), a u32 count n, then
columns of n values each, back to back, in the order given below.

  f16_to_f32.bin   n = 65536   u32 f32 bits of float16 pattern i, for every i (exhaustive):
                               numpy's astype(float32), exact, signalling NaNs kept.
  f32_to_16.bin    n samples   u32 f32 input bits | u16 f16 bits | u16 bf16 bits
  f64_to_f32.bin   n samples   u64 f64 input bits | u32 f32 bits: numpy's astype(float32)
                               (NaN inputs are left out: their payload is the CPU's business).

f32 -> f16 is numpy's astype(float16) (round to nearest even, subnormal halves, overflow to inf),
except for NaN inputs, where plait's policy applies: sign | 0x7e00 | (mantissa >> 13), the quiet
NaN with the top payload bits (as F16C does). numpy keeps a signalling NaN signalling (and sets
the lowest bit when the kept payload is 0); the script checks that numpy agrees on everything else.

f32 -> bf16: numpy has no bfloat16, so the reference is the integer round-to-nearest-even formula
(u + 0x7fff + ((u >> 16) & 1)) >> 16, and (u >> 16) | 0x0040 for NaN (quiet, sign and top payload
kept, as AVX512-BF16 does). The script checks the formula against an exact float64 comparison of
the two bf16 neighbours of every finite input.

The f32 samples cover all 256 exponents with both signs; for each, the round-to-even ties of f16
(normal and subnormal) and bf16 with an even and an odd kept bit, one f32 ulp above and below
each tie, and random mantissas; plus f32 subnormals, the f16 subnormal and overflow boundaries
(65504, 65519.99, 65520), NaN payloads (signalling and quiet, both signs), +-inf and +-0.
"""

import pathlib
import struct

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "vectors"
MAGIC = b"PLAITVEC"
VERSION = 1
rng = np.random.default_rng(20261127)


def write(name, *columns):
    n = len(columns[0])
    assert all(len(c) == n for c in columns)
    with open(OUT / name, "wb") as f:
        f.write(MAGIC + struct.pack("<II", VERSION, n))
        for c in columns:
            f.write(c.astype(c.dtype.newbyteorder("<")).tobytes())
    print(f"wrote test/vectors/{name}: {n} samples")


def f32_samples():
    out = []
    for sign in (0, 1):
        for e in range(256):
            top = (sign << 31) | (e << 23)
            # random mantissas
            out.extend(top | rng.integers(0, 1 << 23, 24, dtype=np.uint32))
            out.extend([top, top | 0x7FFFFF, top | 1])
            # ties and their neighbours where `cut` low mantissa bits are dropped: 13 for a
            # normal f16, 16 for bf16, more for an f16 subnormal of this exponent
            cuts = {13, 16}
            half_exp = e - 127 + 15
            if half_exp < 1:
                cuts.add(min(24, 13 + 1 - half_exp))
            for cut in sorted(cuts):
                for kept_odd in (0, 1):
                    for _ in range(2):
                        high = int(rng.integers(0, 1 << (23 - cut))) if cut < 23 else 0
                        kept = ((high & ~1) | kept_odd) << cut if cut < 23 else 0
                        tie = 1 << (cut - 1)
                        for low in (tie, tie - 1, tie + 1, 0, (1 << cut) - 1):
                            out.append(top | ((kept | low) & 0x7FFFFF))
    specials = [
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,  # +-0, +-inf
        0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00400000,  # f32 subnormals
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000,  # 65504, 65519.99.., 65520, above, 65536
        0xC77FE000, 0xC77FEFFF, 0xC77FF000, 0xC77FF001,
        0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x7F7EFFFF, 0x7F7E8000,  # bf16 overflow
        0x33800000, 0x33000000, 0x33000001, 0x32FFFFFF, 0x33C00000, 0x33A00000,  # 2^-24, 2^-25 (tie), 3*2^-25
        0x387FC000, 0x387FE000, 0x387FFFFF, 0x38800000, 0x387FF000,  # around the smallest normal half 2^-14
    ]
    nan_payloads = [
        0x000001, 0x000FFF, 0x001000, 0x001FFF, 0x002000, 0x00FFFF, 0x010000, 0x200000, 0x3FFFFF,
        0x400000, 0x400001, 0x7FE000, 0x7FFF80, 0x7F8000, 0x7FFFFF, 0x7FFF7F, 0x7FFFFE, 0x3FE000,
    ]
    for s in (0, 0x80000000):
        for p in nan_payloads:
            specials.append(s | 0x7F800000 | p)
    out.extend(specials)
    out.extend(rng.integers(0, 1 << 32, 8192, dtype=np.uint64).astype(np.uint32))
    return np.array(out, dtype=np.uint32)


def bf16_reference(u):
    u64 = u.astype(np.uint64)
    rounded = ((u64 + 0x7FFF + ((u64 >> 16) & 1)) >> 16) & 0xFFFF
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet = (u >> 16) | 0x0040
    return np.where(nan, quiet, rounded).astype(np.uint16)


def check_bf16_against_float64(u, b):
    """Exact check of the formula: the nearest of the two bf16 neighbours, ties to the even one."""
    finite = (u & 0x7F800000) != 0x7F800000
    x = u[finite].view(np.float32).astype(np.float64)
    down = (u[finite] & 0xFFFF0000).astype(np.uint32)
    lo = down.view(np.float32).astype(np.float64)
    step = np.ldexp(1.0, ((down >> 23) & 0xFF).astype(np.int64) - 127 - 7)
    step = np.where(((down >> 23) & 0xFF) == 0, 2.0**-133, step)  # f32 subnormal: fixed spacing
    hi = lo + np.where(x < 0, -step, step)  # the next bf16 away from zero (may be inf)
    d_lo, d_hi = np.abs(x - lo), np.abs(hi - x)
    up = (d_hi < d_lo) | ((d_hi == d_lo) & ((down >> 16) & 1 == 1))
    expected = ((down >> 16) + up).astype(np.uint16)  # +1 on the pattern moves away from zero
    assert np.array_equal(expected, b[finite]), "bf16 RNE formula disagrees with the float64 check"
    inf = (u & 0x7FFFFFFF) == 0x7F800000
    assert np.array_equal(b[inf], (u[inf] >> 16).astype(np.uint16))


def f16_reference(u):
    with np.errstate(over="ignore", invalid="ignore"):
        h = u.view(np.float32).astype(np.float16).view(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    policy = (((u >> 16) & 0x8000) | 0x7E00 | ((u >> 13) & 0x3FF)).astype(np.uint16)
    # numpy agrees on every NaN's sign and NaN-ness, and exactly on quiet NaNs
    assert np.all((h[nan] & 0x7C00) == 0x7C00) and np.all((h[nan] & 0x3FF) != 0)
    assert np.array_equal(h[nan] & 0x8000, policy[nan] & 0x8000)
    quiet = nan & ((u & 0x00400000) != 0)
    assert np.array_equal(h[quiet], policy[quiet])
    return np.where(nan, policy, h).astype(np.uint16)


def f64_samples():
    out = []
    # every f64 exponent around the f32 range (normal, subnormal, underflow, overflow), with
    # ties of the f32 rounding (29 dropped bits for normal results, more for subnormal ones)
    for sign in (0, 1):
        for e in range(1023 - 160, 1023 + 140):
            top = (sign << 63) | (e << 52)
            out.extend(top | rng.integers(0, 1 << 52, 8, dtype=np.uint64))
            f32_exp = e - 1023
            cut = 29 if f32_exp >= -126 else min(53, 29 + (-126 - f32_exp))
            for kept_odd in (0, 1):
                high = int(rng.integers(0, 1 << max(0, 52 - cut))) if cut < 52 else 0
                kept = ((high & ~1) | kept_odd) << cut if cut < 52 else 0
                tie = 1 << (cut - 1)
                for low in (tie, tie - 1, tie + 1):
                    out.append(top | ((kept | low) & ((1 << 52) - 1)))
    flt_max = 3.4028234663852886e38
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, flt_max, -flt_max, 3.4028235677973366e38, np.nextafter(3.4028235677973366e38, 0),
         2.0**-149, 2.0**-150, np.nextafter(2.0**-150, 1), 1.5 * 2.0**-149, 2.0**-126, 1e-45, 1e-46, 1.0, 1 / 3, 0.1],
        dtype=np.float64,
    ).view(np.uint64)
    out.extend(specials)
    out.extend(rng.integers(0, 1 << 63, 4096, dtype=np.uint64) | (rng.integers(0, 2, 4096, dtype=np.uint64) << 63))
    u = np.array(out, dtype=np.uint64)
    finite_or_inf = (u & 0x7FF0000000000000) != 0x7FF0000000000000
    is_inf = (u & 0x7FFFFFFFFFFFFFFF) == 0x7FF0000000000000
    return u[finite_or_inf | is_inf]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    write("f16_to_f32.bin", halves.view(np.float16).astype(np.float32).view(np.uint32))

    u = f32_samples()
    b = bf16_reference(u)
    check_bf16_against_float64(u, b)
    write("f32_to_16.bin", u, f16_reference(u), b)

    d = f64_samples()
    with np.errstate(over="ignore"):
        f = d.view(np.float64).astype(np.float32).view(np.uint32)
    write("f64_to_f32.bin", d, f)


if __name__ == "__main__":
    main()
