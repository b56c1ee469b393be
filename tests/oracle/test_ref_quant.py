"""The quantizing and decoding references (ref/quant_fp8.c, ref/dequant.c) against
independent oracles: ml_dtypes' OCP FP8 casts, numpy float32 arithmetic, and the gguf
package's Q4_K / Q6_K decoders (llama.cpp's own Python package).

quant_fp8 (ref/ref.h): per scale group g (layouts of ref/types.h)
    amax_g = max |x|,  s_g = f32(amax_g / fp8_max) (1 when amax_g = 0),
    q = fp8(f32(x / s_g)) nearest even, saturating; with flush a result that would
    be an fp8 subnormal becomes +-0.
The oracle computes s_g and x / s_g as float32 divisions (IEEE: correctly rounded;
x and amax are float values, asserted), where the reference divides in double and
rounds to float: both must give the same bits (a quotient of two floats computed in
double and rounded to float is the correctly rounded float quotient, Figueroa 1995,
since double has at least 2*24 + 2 bits). The codes come from ml_dtypes' cast of the
float32 quotient clipped to +-fp8_max (its cast rounds to nearest even and turns
anything past the largest value into NaN or inf: the clip is the saturation). The
flush rule is applied to the cast's result, the quotient output is x / s_g in
float64 (0 where flushed). One input row of float32 subnormals makes s_g = 0 in its
own group (amax / fp8_max underflows): x / s_g = +-inf there, which is what
saturation is for. Everything is compared bit for bit: there is no
transcendental function anywhere, so no tolerance is needed.

dequant / embed: values bit-exact with gguf.quants.dequantize (float32 results); mag
= |d sc q| + |dmin m| for Q4_K (sc, m unpacked by gguf's Q4_K.get_scale_min, the
products exact in float64, one rounding in the sum on both sides), |y| for Q6_K,
F16 and F32; an id outside the table gives a NaN row and NaN mag.
"""
import ctypes
import os
import sys

import ml_dtypes
import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import Q4_K, dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbref import (KB_BF16, KB_E4M3, KB_E5M2, KB_F16, KB_F32, KB_Q4K, KB_Q6K, SCALE_BLK128,  # noqa: E402
                   SCALE_NAMES, SCALE_OUTER, SCALE_TENSOR, SCALE_VEC128, DTYPE_NAMES, QuantFp8Args, Tally,
                   declare_refs, load, ptr, simd_status)

lib = declare_refs(load())
lib.kb_set_ref_threads(2)
rng = np.random.default_rng(20241129)
t = Tally()
simd_status(t)

FP8 = {KB_E4M3: (ml_dtypes.float8_e4m3fn, 448.0, 2.0**-6), KB_E5M2: (ml_dtypes.float8_e5m2, 57344.0, 2.0**-14)}
QT = {KB_Q4K: GGMLQuantizationType.Q4_K, KB_Q6K: GGMLQuantizationType.Q6_K}
BLOCK_BYTES = {KB_Q4K: 144, KB_Q6K: 210}


def group_index(mode, rows, k):
    """[rows][k] scale index of every element and the scale count (ref/types.h)."""
    kb, mb = -(-k // 128), -(-rows // 128)
    r = np.arange(rows)[:, None]
    c = np.arange(k)[None, :]
    if mode == SCALE_TENSOR:
        return np.zeros((rows, k), dtype=np.int64), 1
    if mode == SCALE_OUTER:
        return np.broadcast_to(r, (rows, k)).astype(np.int64), rows
    if mode == SCALE_VEC128:
        return (r * kb + c // 128).astype(np.int64), rows * kb
    return ((r // 128) * kb + c // 128).astype(np.int64), mb * kb


flushed = {KB_E4M3: 0, KB_E5M2: 0}  # codes the flush rule zeroed, over the whole suite
saturated = {KB_E4M3: 0, KB_E5M2: 0}  # quotients beyond +-fp8_max, clipped


def np_quant(x, mode, fp8, flush):
    """(scales float32, codes uint8, quotient float64) from the definition."""
    f8, fmax, min_normal = FP8[fp8]
    rows, k = x.shape
    g, ns = group_index(mode, rows, k)
    amax = np.zeros(ns)
    np.maximum.at(amax, g.ravel(), np.abs(x).ravel())
    assert np.array_equal(amax.astype(np.float32).astype(np.float64), amax), "amax is a float value"
    assert np.array_equal(x.astype(np.float32).astype(np.float64), x), "inputs are float values"
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(amax > 0, amax.astype(np.float32) / np.float32(fmax), np.float32(1)).astype(np.float32)
        q32 = x.astype(np.float32) / s[g]  # float32 division, correctly rounded
        codes = np.clip(q32, -fmax, fmax).astype(f8).view(np.uint8).copy()
        saturated[fp8] += int(np.count_nonzero(np.abs(q32) > fmax))
        quotient = x / s[g].astype(np.float64)
    if flush:
        v = codes.view(f8).astype(np.float64)
        sub = (v != 0) & (np.abs(v) < min_normal)
        codes[sub] &= 0x80
        quotient[sub] = 0.0
        flushed[fp8] += int(np.count_nonzero(sub))
    return s, codes, quotient


def c_quant(blob, rows, k, in_type, mode, fp8, flush):
    ns = group_index(mode, rows, k)[1]
    s = np.empty(ns, dtype=np.float32)
    codes = np.empty((rows, k), dtype=np.uint8)
    quotient = np.empty((rows, k))
    args = QuantFp8Args(rows, k, in_type, fp8, mode, flush)
    lib.ref_quant_fp8(ctypes.byref(args), ptr(blob), ptr(s), ptr(codes), ptr(quotient))
    return s, codes, quotient


def inputs(in_type, rows, k):
    """(bytes for the C reference, the values as fp64 from an independent decoder).
    Rows of very different scales with outliers, some values far below their group's
    amax (so quotients reach the fp8 subnormals and flush has work), a zero row (amax 0
    -> s = 1) and signed zeros."""
    if in_type in QT:
        w = rng.standard_normal((rows, k)) * 10.0 ** rng.uniform(-3, 1, (rows, 1))
        w[rng.random(w.shape) < 0.01] *= 30
        w = w.astype(np.float32)
        nb = rows * k // 256
        blocks = np.zeros((nb, BLOCK_BYTES[in_type]), dtype=np.uint8)
        (lib.kb_quantize_q4k if in_type == KB_Q4K else lib.kb_quantize_q6k)(ptr(w), ptr(blocks), nb)
        return blocks, dequantize(blocks.reshape(-1), QT[in_type]).reshape(rows, k).astype(np.float64)
    x = rng.standard_normal((rows, k)) * 10.0 ** rng.uniform(-3, 1, (rows, 1))
    x[rng.random(x.shape) < 0.01] *= 30
    tiny = rng.random(x.shape) < 0.03
    x[tiny] *= 10.0 ** rng.uniform(-12, -4, np.count_nonzero(tiny))
    x[rows // 2] = 0.0
    x[0, :3] = [0.0, -0.0, -0.0]
    if in_type == KB_F32:  # a row of float32 subnormals: amax / fp8_max rounds to s = 0, so in
        # its own group (outer, vec128) every x / s is +-inf: the saturation to +-fp8_max
        x[rows // 3] = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], k) * 2.0**-149
    np_type = {KB_F32: np.float32, KB_F16: np.float16, KB_BF16: ml_dtypes.bfloat16}[in_type]
    if in_type == KB_F16:
        x = np.clip(x, -60000, 60000)
    enc = np.ascontiguousarray(x.astype(np_type))
    return enc, enc.astype(np.float64)


for in_type, rows, k in [(KB_F32, 203, 300), (KB_F16, 130, 200), (KB_BF16, 9, 1000), (KB_Q4K, 131, 512),
                         (KB_Q6K, 5, 768)]:
    blob, x = inputs(in_type, rows, k)
    for fp8 in (KB_E4M3, KB_E5M2):
        for mode in range(4):
            for flush in (0, 1):
                s, codes, quotient = c_quant(blob, rows, k, in_type, mode, fp8, flush)
                ws, wcodes, wq = np_quant(x, mode, fp8, flush)
                what = (f"quant_fp8 {DTYPE_NAMES[in_type]} {rows}x{k} -> {DTYPE_NAMES[fp8]} {SCALE_NAMES[mode]}"
                        f"{' flush' if flush else ''}")
                t.check(np.array_equal(s.view(np.uint32), ws.view(np.uint32)),
                        f"{what}: scales differ in {np.count_nonzero(s.view(np.uint32) != ws.view(np.uint32))}")
                bad = np.argwhere(codes != wcodes)
                t.check(bad.size == 0, f"{what}: {len(bad)} codes differ" + "".join(
                    f"\n    [{r},{c}] x {x[r, c]!r} got 0x{codes[r, c]:02x} want 0x{wcodes[r, c]:02x}"
                    for r, c in bad[:5]))
                t.same_bits(what + ": quotient", quotient, wq)

# the data reached the fp8 subnormals, so the flush rule was really compared
for fp8, count in flushed.items():
    print(f"  quant_fp8 -> {DTYPE_NAMES[fp8]}: {count} subnormal codes flushed over the suite")
    t.check(count > 100, f"quant_fp8 test data reaches {DTYPE_NAMES[fp8]} subnormals ({count} flushed codes)")
    print(f"  quant_fp8 -> {DTYPE_NAMES[fp8]}: {saturated[fp8]} quotients saturated over the suite")
    t.check(saturated[fp8] > 100, f"quant_fp8 test data saturates {DTYPE_NAMES[fp8]} ({saturated[fp8]} codes)")


# ---------------------------------------------------------------- dequant and embed
def q4k_mag(blocks):
    """|d sc q| + |dmin m| per value, from the block bytes (gguf unpacks sc, m)."""
    nb = blocks.shape[0]
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float64)  # (nb, 1)
    dmin = blocks[:, 2:4].copy().view(np.float16).astype(np.float64)
    sc, m = Q4_K.get_scale_min(blocks[:, 4:16].copy())
    qs = blocks[:, 16:144].reshape(nb, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    q = (qs & 0x0F).reshape(nb, 8, 32).astype(np.float64)  # sub-block j = 2 * chunk + (high nibble)
    mag = np.abs(d[:, :, None] * sc[:, :, None].astype(np.float64) * q) + np.abs(dmin[:, :, None] * m[:, :, None])
    return mag.reshape(nb * 256)


for kind, rows, k in [(KB_Q4K, 40, 512), (KB_Q6K, 17, 768)]:
    blob, want = inputs(kind, rows, k)
    raw = rng.integers(0, 256, size=(rows * k // 256, BLOCK_BYTES[kind]), dtype=np.uint8)  # random bytes too
    f16 = np.array([2e-3, 1e-3] if kind == KB_Q4K else [4e-3], dtype=np.float16).view(np.uint8)
    if kind == KB_Q4K:
        raw[:, 0:4] = f16
    else:
        raw[:, 208:210] = f16
    for label, blocks in (("quantized", blob), ("random bytes", raw)):
        blocks = np.ascontiguousarray(blocks)
        want = dequantize(blocks.reshape(-1), QT[kind]).reshape(rows, k).astype(np.float64)
        want_mag = q4k_mag(blocks.reshape(-1, 144)).reshape(rows, k) if kind == KB_Q4K else np.abs(want)
        out, mag = np.empty((rows, k)), np.empty((rows, k))
        lib.ref_dequant(kind, ptr(blocks), rows, k, ptr(out), ptr(mag))
        what = f"dequant {DTYPE_NAMES[kind]} {rows}x{k} {label}"
        t.same_bits(what + " = gguf", out, want)
        t.same_bits(what + " mag", mag, want_mag)
        ids = rng.integers(0, rows, 23).astype(np.int32)
        ids[[3, 7]] = [-1, rows]  # outside the table: NaN rows
        eo, em = np.empty((23, k)), np.empty((23, k))
        lib.ref_embed(kind, ptr(blocks), rows, k, ptr(ids), 23, ptr(eo), ptr(em))
        ok_ids = (ids >= 0) & (ids < rows)
        t.same_bits(f"embed {DTYPE_NAMES[kind]} {label}: rows by id", eo[ok_ids], want[ids[ok_ids]])
        t.same_bits(f"embed {DTYPE_NAMES[kind]} {label}: mag rows by id", em[ok_ids], want_mag[ids[ok_ids]])
        t.check(bool(np.isnan(eo[~ok_ids]).all() and np.isnan(em[~ok_ids]).all()),
                f"embed {DTYPE_NAMES[kind]}: ids -1 and {rows} give NaN rows and NaN mags")

for kind, np_type in ((KB_F16, np.float16), (KB_F32, np.float32)):
    table = np.ascontiguousarray((rng.standard_normal((50, 96)) * 3).astype(np_type))
    ids = rng.integers(0, 50, 9).astype(np.int32)
    eo, em = np.empty((9, 96)), np.empty((9, 96))
    lib.ref_embed(kind, ptr(table), 50, 96, ptr(ids), 9, ptr(eo), ptr(em))
    want = table.astype(np.float64)[ids]
    t.same_bits(f"embed {DTYPE_NAMES[kind]} rows by id", eo, want)
    t.same_bits(f"embed {DTYPE_NAMES[kind]} mag = |y|", em, np.abs(want))

t.finish()
