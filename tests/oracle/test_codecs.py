"""Oracle test of ref/formats.c's scalar codecs against ml_dtypes and numpy.

Decode: every code of e4m3fn, e5m2, fp16 and bf16 must give the same float32 bits as
ml_dtypes / numpy (NaN only has to be NaN of the same sign).
Encode: a dense sweep per format (every representable value, every midpoint between
neighbours - the ties -, the floats just above and below each tie and each value,
the overflow boundary and beyond, the subnormal range down to float32 subnormals,
+-0, +-inf, NaN) plus random floats (random bit patterns, and random mantissas over
the exponents around the format's range) must encode to the same bits as
`x.astype(type)` (non-saturating) and as `clip(x, -max, max).astype(type)`
(saturating). NaN results only have to be NaN of the same sign (payloads differ:
the C codecs return quiet NaNs, which is also checked for fp16 and bf16).

Run: KB_REF_LIB=path/to/libkbref_py.so python test_codecs.py"""
import ctypes
import itertools
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kbref  # noqa: E402

np.seterr(all="ignore")  # the sweeps overflow float32 on purpose
lib = kbref.load()
T = kbref.Tally()
kbref.simd_status(T)
rng = np.random.default_rng(20240607)


class Fmt:
    def __init__(self, name, np_type, bits, enc, dec, ctype):
        self.name = name
        self.np_type = np_type
        self.bits = bits
        self.utype = np.uint8 if bits == 8 else np.uint16
        self.enc = getattr(lib, enc)
        self.enc.argtypes = [ctypes.c_float, ctypes.c_int]
        self.enc.restype = ctype
        self.dec = getattr(lib, dec)
        self.dec.argtypes = [ctype]
        self.dec.restype = ctypes.c_float
        self.max = float(ml_dtypes.finfo(np_type).max)
        self.sign_bit = 1 << (bits - 1)

    def all_codes(self):
        return np.arange(1 << self.bits, dtype=np.int64).astype(self.utype)


FORMATS = [
    Fmt("e4m3fn", ml_dtypes.float8_e4m3fn, 8, "kb_f32_to_e4m3", "kb_e4m3_to_f32", ctypes.c_uint8),
    Fmt("e5m2", ml_dtypes.float8_e5m2, 8, "kb_f32_to_e5m2", "kb_e5m2_to_f32", ctypes.c_uint8),
    Fmt("fp16", np.float16, 16, "kb_f32_to_f16", "kb_f16_to_f32", ctypes.c_uint16),
    Fmt("bf16", ml_dtypes.bfloat16, 16, "kb_f32_to_bf16", "kb_bf16_to_f32", ctypes.c_uint16),
]


def f32_bits(x):
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def same_float32(a, b):
    """Elementwise: identical float32 bits, or both NaN with the same sign."""
    ua, ub = f32_bits(a), f32_bits(b)
    both_nan = np.isnan(a) & np.isnan(b) & ((ua >> 31) == (ub >> 31))
    return (ua == ub) | both_nan


def report(fmt, what, x, got, want, ok):
    bad = np.flatnonzero(~ok)
    detail = ""
    for i in bad[:5]:
        detail += f"\n    x={float(x[i])!r} (0x{int(f32_bits(x[i : i + 1])[0]):08x}) got 0x{int(got[i]):x} want 0x{int(want[i]):x}"
    T.check(bad.size == 0, f"{fmt.name} {what}: {bad.size} of {len(x)} differ{detail}")


# ---- decode: all codes ----------------------------------------------------
for fmt in FORMATS:
    codes = fmt.all_codes()
    want = codes.view(fmt.np_type).astype(np.float32)
    got = np.array(list(map(fmt.dec, codes.tolist())), dtype=np.float32)
    ok = same_float32(got, want)
    T.check(ok.all(), f"{fmt.name} decode: {np.count_nonzero(~ok)} of {codes.size} codes differ, "
            f"first codes {np.flatnonzero(~ok)[:5].tolist()}")
    if fmt.bits == 16:  # the C decoders promise quiet NaNs
        nan = np.isnan(got)
        T.check(bool((f32_bits(got[nan]) & 0x400000).all()), f"{fmt.name} decode: NaN results must be quiet")


# ---- encode sweeps ----------------------------------------------------------
def nextafter32(x, direction):
    return np.nextafter(x.astype(np.float32), np.float32(direction)).astype(np.float32)


def dense_sweep(fmt):
    """Every value, every tie between neighbours and the floats around both, and the
    special cases around the overflow and underflow edges."""
    vals = fmt.all_codes().view(fmt.np_type).astype(np.float32)
    vals = np.unique(vals[np.isfinite(vals)])  # sorted, -max .. max, one zero
    finfo = ml_dtypes.finfo(fmt.np_type)
    ulp_at_max = float(vals[-1] - vals[-2])
    # the tie between max and the first value past it, whose rounding decides overflow
    over_tie = np.float32(float(finfo.max) + ulp_at_max / 2)
    edge = np.array([float(finfo.max) + ulp_at_max * k for k in (0.25, 1, 1.5, 2, 4, 1000)] + [
        over_tie, 2 * float(finfo.max), 1e30, float(np.finfo(np.float32).max), np.inf], dtype=np.float32)
    edge = np.concatenate([edge, nextafter32(edge[:-1], np.inf), nextafter32(np.array([over_tie]), 0)])
    smallest_sub = float(finfo.smallest_subnormal)
    tiny = np.array([smallest_sub * k for k in (0.25, 0.5, 0.75, 1, 1.5, 2.5, 3.5)] +
                    [1e-30, 1e-38, 1e-45, 1.5e-39, np.finfo(np.float32).smallest_normal, 0.0], dtype=np.float32)
    tiny = np.concatenate([tiny, nextafter32(tiny, np.inf), nextafter32(tiny[tiny > 0], 0)])
    f32_sub = (np.arange(1, 2000, 7, dtype=np.uint32)).view(np.float32)  # float32 subnormals
    mids = ((vals[:-1].astype(np.float64) + vals[1:].astype(np.float64)) / 2).astype(np.float32)
    assert np.all(mids.astype(np.float64) == (vals[:-1].astype(np.float64) + vals[1:]) / 2), "ties must be exact"
    parts = [vals, nextafter32(vals, np.inf), nextafter32(vals, -np.inf),
             mids, nextafter32(mids, np.inf), nextafter32(mids, -np.inf),
             edge, -edge, tiny, -tiny, f32_sub, -f32_sub,
             np.array([np.nan, -np.nan, 0.0, -0.0], dtype=np.float32)]
    return np.concatenate(parts).astype(np.float32)


def random_floats(fmt, n):
    """Half random bit patterns (every class of float32, NaNs included), half random
    mantissas with exponents spread from below the smallest subnormal to past max."""
    bitpat = rng.integers(0, 1 << 32, size=n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    finfo = ml_dtypes.finfo(fmt.np_type)
    lo = int(np.floor(np.log2(float(finfo.smallest_subnormal)))) - 3
    hi = int(np.ceil(np.log2(float(finfo.max)))) + 3
    m = n - n // 2
    exps = rng.integers(lo, hi + 1, size=m)
    mant = rng.integers(0, 1 << 23, size=m).astype(np.float64) / (1 << 23)
    sign = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    mag = (sign * (1.0 + mant) * np.exp2(exps.astype(np.float64))).astype(np.float32)
    return np.concatenate([bitpat, mag])


def check_encode(fmt, x, label):
    with np.errstate(all="ignore"):
        want_ns = x.astype(fmt.np_type).view(fmt.utype)
        want_sat = np.clip(x, -fmt.max, fmt.max).astype(fmt.np_type).view(fmt.utype)
    xs = x.tolist()
    for sat, want in ((0, want_ns), (1, want_sat)):
        got = np.fromiter(map(fmt.enc, xs, itertools.repeat(sat)), dtype=fmt.utype, count=len(xs))
        got_v = got.view(fmt.np_type).astype(np.float32)
        want_v = want.view(fmt.np_type).astype(np.float32)
        ok = (got == want) | (np.isnan(got_v) & np.isnan(want_v) &
                              ((got & fmt.sign_bit) == (want & fmt.sign_bit)))
        report(fmt, f"encode {label} saturate={sat}", x, got, want, ok)
        if fmt.bits == 16:
            quiet = 0x200 if fmt.name == "fp16" else 0x40
            nan = np.isnan(got_v)
            T.check(bool(((got[nan] & quiet) != 0).all()), f"{fmt.name} encode {label}: NaN results must be quiet")
        if sat:
            T.check(not np.isinf(got_v).any(), f"{fmt.name} saturating encode {label} gave inf")
            T.check(bool((np.isnan(got_v) == np.isnan(x)).all()),
                    f"{fmt.name} saturating encode {label}: NaN exactly for NaN inputs")


N_RANDOM = {"e4m3fn": 1_000_000, "e5m2": 1_000_000, "fp16": 500_000, "bf16": 500_000}
for fmt in FORMATS:
    check_encode(fmt, dense_sweep(fmt), "dense sweep")
    check_encode(fmt, random_floats(fmt, N_RANDOM[fmt.name]), "random")

# A few hand-written anchors, so the sweep logic itself cannot hide a shared mistake.
anchors = [
    ("e4m3fn", 448.0, 0, 0x7E), ("e4m3fn", 464.0, 0, 0x7E), ("e4m3fn", 464.01, 0, 0x7F),
    ("e4m3fn", 1e6, 1, 0x7E), ("e4m3fn", -np.inf, 1, 0xFE), ("e4m3fn", 2.0 ** -9, 0, 0x01),
    ("e4m3fn", 2.0 ** -10, 0, 0x00), ("e4m3fn", 1.5 * 2.0 ** -10, 0, 0x01), ("e4m3fn", -0.0, 0, 0x80),
    ("e5m2", 57344.0, 0, 0x7B), ("e5m2", 61440.0, 0, 0x7C), ("e5m2", 61439.0, 0, 0x7B),
    ("e5m2", np.inf, 1, 0x7B), ("e5m2", 2.0 ** -16, 0, 0x01), ("e5m2", 1.25, 0, 0x3D),
    ("fp16", 65504.0, 0, 0x7BFF), ("fp16", 65520.0, 0, 0x7C00), ("fp16", 65520.0, 1, 0x7BFF),
    ("fp16", 2.0 ** -24, 0, 0x0001), ("fp16", 2.0 ** -25, 0, 0x0000), ("fp16", 1.0 + 2.0 ** -11, 0, 0x3C00),
    ("fp16", 1.0 + 3 * 2.0 ** -11, 0, 0x3C02),
    ("bf16", 1.0 + 2.0 ** -8, 0, 0x3F80), ("bf16", 1.0 + 3 * 2.0 ** -8, 0, 0x3F82),
    ("bf16", 3.4e38, 0, 0x7F80), ("bf16", 3.4e38, 1, 0x7F7F),
]
by_name = {f.name: f for f in FORMATS}
for name, x, sat, code in anchors:
    got = by_name[name].enc(float(np.float32(x)), sat)
    T.check(got == code, f"{name} anchor encode({x!r}, saturate={sat}) = 0x{got:x}, want 0x{code:x}")

T.finish()
