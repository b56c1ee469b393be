"""The fp64 references (ref/) against independent numpy float64 implementations.

Each op is recomputed here from its definition with numpy (vectorised, other
summation orders, BLAS for the products, numpy's own exp/power/sin/cos), on seeded
random data, and compared with a bound derived below from what both sides are
documented to do. u = 2^-53; gamma_n = n u / (1 - n u); a sum or dot product of n
terms errs by at most gamma_n * sum |terms| in any order, with or without FMA
(Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., sec. 3.1).

The math functions are not correctly rounded, on either side, and differ between
them (numpy dispatches SIMD implementations on AVX2/AVX-512 machines). Their
documented accuracy, for float64:
  [G]  glibc libm (the C references): exp, pow, sin, cos within 1 ulp: the table
       "Known Maximum Errors in Math Functions" of the glibc manual, generated from
       sysdeps/x86_64/fpu/libm-test-ulps ("exp", "pow", "sin", "cos": double: 1).
  [N1] numpy exp, sin, cos, whichever implementation is dispatched: within 1 ulp:
       numpy's accuracy data, numpy/_core/tests/data/umath-validation-set-
       {exp,sin,cos}.csv (ulperrortol 1 for every float64 row), asserted by
       numpy/_core/tests/test_umath_accuracy.py.
  [N2] numpy power on AVX-512: Intel SVML's high-accuracy variants, "ULP error < 1.0"
       (numpy/SVML pull request #4, used for float64 since numpy pull request
       #24006); without AVX-512 numpy calls libm's pow [G].
  sqrt, +, -, *, / are correctly rounded (IEEE 754) on both sides.
1 ulp of a normal result r is at most 2u|r| (a relative 2u), and at most u in
absolute terms when |r| <= 1 (sin, cos). So every bound below covers any two
implementations within these limits: CTest runs this file with numpy's SIMD dispatch
on and off (run_simd_limited.py), and both must pass.

Per op (C and numpy each err by the "per side" amount against exact math on the
same fp64 inputs; the test allows the sum of the two):
  rmsnorm    sum of k squares gamma_k, + eps and / k 2u, sqrt halves that and adds
             u, then / and * w: per side (k/2 + 4)u |y|; tol (k + 9) u |y| (the
             extra u covers the second-order terms, (k u)^2 < 1e-24).
  rope_neox  angle a = pos * base^e: pow 1 ulp (2u) + the product (u): 3u a.
             cos/sin of it: |a_hat - a| + 1 ulp (u): 3u a + u each. y = x_i c - x_p s:
             two products and a difference, 2u X with X = |x_i| + |x_p|:
             per side u X (3a + 3); both 6u X (a + 1) <= 6u mag, since the
             reference's mag = (a (i + 2) + 1) X + |y| >= (2a + 1) X: tol 7u mag.
             mag itself: a (i + 2) + 1 and * X carry 3u + 4u, |y| 3u mag, the
             final + u: per side 11u mag, tol 24u mag.
  attention  per (query, head), scores s_j = q.k_j / sqrt(d) err (d + 2)u S_j
             (S_j = sum |q k_j| / sqrt d); s_j - max rounds: u (max - s_j); exp 2u;
             the normalisation Z and each p_j: L u. A relative error r_j of the
             weight of key j moves out_c by p_j (v_jc - out_c) r_j, so per side
               T_c = (d + 2L + 4) u mag_c + u extra_c,
               extra_c = sum_j p_j |v_jc - out_c| (max - s_j)
             (the reference's mag_c = sum p|v| + sum p|v - out|(S + 1) holds the
             rest; extra_c is the one term it cannot, and is computed here). tol 2 T.
             mag: each p_j errs by Phi_j <= Phi = u((d + 2) S_max + (max - s_min)
             + L + 3), out_c by T_c (moving |v - out| (S + 1) by (S_max + 1) T_c),
             S_j by (d + 2)u, and the sums by (L + 3)u: per side
             (Phi + (d + L + 10) u) mag + (S_max + 1) T_c; tol twice that.
  gemm_fp8   bit-exact: fp8 values are multiples of 2^-9 (e4m3) or 2^-16 (e5m2), so
             their products sit on a grid of 2^-18 or 2^-25; while sum |terms| stays
             below 2^53 grid steps every partial sum in the reference is exact. The
             oracle computes the block sums exactly in int64, converts them once to
             float64 (exact by the same bound, asserted), and applies the scales in
             the definition's order: both sides make the same roundings. A last case
             with large e5m2 values breaks the exactness bound on purpose: then the
             reference errs by (127 + kb) u mag (block sums of up to 128 exact
             products, the block scale product, kb block adds) and the oracle by
             (kb + 1) u mag (one rounding per block sum, the scale, the adds): tol
             (128 + 2 kb + 1) u mag.
  matmul     W of every decodable type (Q4_K and Q6_K decoded by gguf, f16 by numpy,
             bf16 and fp8 by ml_dtypes), x fp64; numpy x @ W^T (BLAS). Both sides
             are K-term dot products: gamma_K sum |w x| each; tol 2 gamma_K / (1 -
             gamma_K) mag (mag >= (1 - gamma_K) sum |w x|). mag = sum |w||x|, the same.
  add, bias_add  one IEEE addition each (and |a| + |b| for mag): bit-exact.
  swiglu     y = g / (1 + exp(-g)) * up: exp 2u (its relative error enters 1 + e
             scaled by e / (1 + e) <= 1), 1 +, /, * one u each: per side 5u |y|,
             tol 11u |y| + 8 * 2^-1074 (results in the subnormal range err by up to
             half of 2^-1074 per rounding, absolute).
"""
import ctypes
import math
import os
import sys

import ml_dtypes
import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbref import (KB_BF16, KB_E4M3, KB_E5M2, KB_F16, KB_F32, KB_Q4K, KB_Q6K, SCALE_BLK128,  # noqa: E402
                   SCALE_NAMES, SCALE_OUTER, SCALE_TENSOR, SCALE_VEC128, DTYPE_NAMES, AttentionDims,
                   GemmFp8Dims, Tally, declare_refs, load, ptr, simd_status)

U = 2.0**-53
TINY = 2.0**-1074

lib = declare_refs(load())
lib.kb_set_ref_threads(2)
np.seterr(over="ignore", under="ignore")  # swiglu's exp(800) overflows on purpose

rng = np.random.default_rng(20240611)
t = Tally()
simd_status(t)


def gamma(n):
    return n * U / (1 - n * U)


def activations(shape, outlier_scale=20.0):
    """Normal values with a few large outliers (real activations have them), fp64."""
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.01
    x[mask] *= outlier_scale
    return x


def empty(shape):
    return np.empty(shape, dtype=np.float64)


# ---------------------------------------------------------------- rmsnorm
def np_rmsnorm(x, w, eps):
    rms = np.sqrt(np.mean(x * x, axis=1) + eps)
    return x / rms[:, None] * w


for n, k, eps in [(1, 3584, 1e-6), (7, 1000, 1e-5), (16, 3584, 1e-6), (3, 5, 0.25)]:
    x = activations((n, k))
    w = 1.0 + 0.3 * rng.standard_normal(k)
    out, mag = empty((n, k)), empty((n, k))
    lib.ref_rmsnorm(n, k, eps, ptr(x), ptr(w), ptr(out), ptr(mag))
    want = np_rmsnorm(x, w, eps)
    tol = (k + 9) * U * np.abs(want)
    t.within(f"rmsnorm {n}x{k} eps {eps}", out, want, tol)
    t.within(f"rmsnorm {n}x{k} mag = |y|", mag, np.abs(want), tol)


# ---------------------------------------------------------------- rope_neox
def np_rope(x, pos, base):
    """y and the reference's mag, (a (i + 2) + 1)(|x_i| + |x_pair|) + |y|."""
    n, heads, d = x.shape
    half = d // 2
    i = np.arange(half)
    angle = pos.astype(np.float64)[:, None] * np.power(float(base), -2.0 * i / d)[None, :]
    c = np.cos(angle)[:, None, :]
    s = np.sin(angle)[:, None, :]
    x0, x1 = x[..., :half], x[..., half:]
    y = np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)
    e = (angle[:, None, :] * (i + 2) + 1.0) * (np.abs(x0) + np.abs(x1))
    return y, np.concatenate([e, e], axis=-1) + np.abs(y)


positions = np.array([0, 1, 2, 3, 100, 1023, 4095, 32767, 32768, 65536, 100000, 131071, 131072], dtype=np.int32)
for base in (1e6, 1e4):
    for heads, d in [(4, 128), (3, 64), (2, 96)]:
        x = activations((len(positions), heads, d))
        out, mag = empty(x.shape), empty(x.shape)
        lib.ref_rope_neox(len(positions), heads, d, base, ptr(x), ptr(positions), ptr(out), ptr(mag))
        want, want_mag = np_rope(x, positions, base)
        what = f"rope_neox base {base:g} heads {heads} d {d} pos 0..131072"
        t.within(what, out, want, 7 * U * want_mag)
        t.within(what + " mag", mag, want_mag, 24 * U * want_mag)


# ---------------------------------------------------------------- attention
def np_attention(q, k, v, kv_len):
    """out, the reference's mag, and the bounds of the module docstring: tol_out, tol_mag."""
    n, heads, d = q.shape
    kv_heads = k.shape[1]
    group = heads // kv_heads
    L = kv_len
    out, mag, tol_out, tol_mag = (np.empty((n, heads, d)) for _ in range(4))
    qpos = kv_len - n + np.arange(n)
    visible = np.arange(kv_len)[None, :] <= qpos[:, None]  # [n][kv_len]
    for h in range(heads):
        g = h // group
        kh, vh = k[:, g, :], v[:, g, :]
        s = q[:, h, :] @ kh.T / math.sqrt(d)
        s_abs = np.abs(q[:, h, :]) @ np.abs(kh).T / math.sqrt(d)
        s = np.where(visible, s, -np.inf)
        mx = s.max(axis=1, keepdims=True)
        p = np.exp(s - mx)
        p /= p.sum(axis=1, keepdims=True)
        o = p @ vh
        dev = np.abs(vh[None, :, :] - o[:, None, :])  # |v_jc - out_c|, [n][L][d]
        sens = np.where(visible, s_abs + 1.0, 0.0)
        m = p @ np.abs(vh) + np.einsum("ij,ijc->ic", p * sens, dev)
        below_max = np.where(visible, mx - s, 0.0)  # max - s_j >= 0
        extra = np.einsum("ij,ijc->ic", p * below_max, dev)
        T = (d + 2 * L + 4) * U * m + U * extra
        s_max = np.where(visible, s_abs, 0.0).max(axis=1, keepdims=True)
        phi = U * ((d + 2) * s_max + below_max.max(axis=1, keepdims=True) + L + 3)
        out[:, h, :] = o
        mag[:, h, :] = m
        tol_out[:, h, :] = 2 * T
        tol_mag[:, h, :] = 2 * ((phi + (d + L + 10) * U) * m + (s_max + 1) * T)
    return out, mag, tol_out, tol_mag


for n, kv_len, heads, kv_heads, d in [
    (1, 300, 28, 4, 128),  # decode, GQA ratio 7, Qwen2.5-7B heads
    (1, 77, 4, 4, 64),  # decode, ratio 1
    (48, 48, 14, 2, 128),  # prefill, ratio 7
    (33, 33, 3, 3, 80),  # prefill, ratio 1, head_dim 80
    (16, 100, 7, 1, 32),  # a chunk of prefill behind a cache, ratio 7
]:
    q = activations((n, heads, d))
    k = activations((kv_len, kv_heads, d))
    v = rng.standard_normal((kv_len, kv_heads, d))
    out, mag = empty((n, heads, d)), empty((n, heads, d))
    dims = AttentionDims(n, kv_len, heads, kv_heads, d)
    lib.ref_attention(ctypes.byref(dims), ptr(q), ptr(k), ptr(v), ptr(out), ptr(mag))
    want, want_mag, tol_out, tol_mag = np_attention(q, k, v, kv_len)
    what = f"attention n {n} kv_len {kv_len} heads {heads}/{kv_heads} d {d}"
    t.within(what, out, want, tol_out)
    t.within(what + " mag", mag, want_mag, tol_mag)


# ---------------------------------------------------------------- gemm_fp8
FP8 = {KB_E4M3: (ml_dtypes.float8_e4m3fn, 9, 448.0), KB_E5M2: (ml_dtypes.float8_e5m2, 16, 57344.0)}


def fp8_operand(shape, kind, spread):
    """Random finite fp8 values (RNE from ml_dtypes), their codes and exact integers:
    value = integer * 2^-grid_exp."""
    dtype, grid_exp, vmax = FP8[kind]
    x = np.clip(rng.standard_normal(shape) * spread, -vmax, vmax)
    f8 = x.astype(dtype)
    values = f8.astype(np.float64)
    assert np.all(np.isfinite(values))
    ints = np.ldexp(values, grid_exp).astype(np.int64)
    assert np.array_equal(np.ldexp(ints.astype(np.float64), -grid_exp), values)
    return f8.view(np.uint8).copy(), ints, grid_exp


def scales(count, rng_scale):
    return (rng_scale * (1.0 + 0.25 * rng.standard_normal(count))).astype(np.float32)


def np_gemm_exact(wi, xi, gw, gx, sa, sb, mode, m, n, k):
    """Exact int64 block sums, then the scales in the definition's order, in float64.
    Returns (D, mag, largest |partial sum| bound in grid steps)."""
    kb = -(-k // 128)
    grid = 2.0 ** -(gw + gx)
    blocks, blocks_abs = [], []
    bound = 0
    for b in range(kb):
        sl = slice(128 * b, min(k, 128 * b + 128))
        bs = xi[:, sl] @ wi[:, sl].T  # [n][m], exact integers
        ba = np.abs(xi[:, sl]) @ np.abs(wi[:, sl]).T
        bound = max(bound, int(ba.max()))
        blocks.append(bs.astype(np.float64) * grid)  # exact while |bs| < 2^53 (asserted by the caller)
        blocks_abs.append(ba.astype(np.float64) * grid)
    sa64, sb64 = sa.astype(np.float64), sb.astype(np.float64)
    if mode in (SCALE_TENSOR, SCALE_OUTER):
        total = np.zeros((n, m))
        total_abs = np.zeros((n, m))
        for b in range(kb):  # sum of block sums, block order
            total = total + blocks[b]
            total_abs = total_abs + blocks_abs[b]
        full_abs = sum(np.abs(x) for x in blocks_abs)  # only for the exactness bound
        bound = max(bound, int(np.max(full_abs) / grid))
        scale = sa64[0] * sb64[0] if mode == SCALE_TENSOR else sb64[:, None] * sa64[None, :]
        return scale * total, np.abs(scale) * total_abs, bound
    d = np.zeros((n, m))
    dm = np.zeros((n, m))
    for b in range(kb):
        if mode == SCALE_VEC128:
            sa_b = sa64.reshape(m, kb)[:, b]
        else:
            sa_b = sa64.reshape(-(-m // 128), kb)[np.arange(m) // 128, b]
        scale = sb64.reshape(n, kb)[:, b][:, None] * sa_b[None, :]
        d = d + scale * blocks[b]
        dm = dm + np.abs(scale) * blocks_abs[b]
    return d, dm, bound


def run_gemm(m, n, k, a_type, b_type, mode, spread_w, spread_x):
    w8, wi, gw = fp8_operand((m, k), a_type, spread_w)
    x8, xi, gx = fp8_operand((n, k), b_type, spread_x)
    kb, mb = -(-k // 128), -(-m // 128)
    na = {SCALE_TENSOR: 1, SCALE_OUTER: m, SCALE_VEC128: m * kb, SCALE_BLK128: mb * kb}[mode]
    nb = {SCALE_TENSOR: 1, SCALE_OUTER: n, SCALE_VEC128: n * kb, SCALE_BLK128: n * kb}[mode]
    sa, sb = scales(na, 0.01), scales(nb, 0.02)
    out, mag = empty((n, m)), empty((n, m))
    dims = GemmFp8Dims(m, n, k, a_type, b_type, mode)
    lib.ref_gemm_fp8(ctypes.byref(dims), ptr(w8), ptr(x8), ptr(sa), ptr(sb), ptr(out), ptr(mag))
    want, want_mag, bound = np_gemm_exact(wi, xi, gw, gx, sa, sb, mode, m, n, k)
    return out, mag, want, want_mag, bound


for a_type, b_type, spread_x in [(KB_E4M3, KB_E4M3, 30.0), (KB_E4M3, KB_E5M2, 3.0)]:
    for mode in range(4):
        for m, n, k in [(200, 9, 300), (130, 4, 256), (64, 33, 1000)]:
            out, mag, want, want_mag, bound = run_gemm(m, n, k, a_type, b_type, mode, 40.0, spread_x)
            what = f"gemm_fp8 {DTYPE_NAMES[a_type]}x{DTYPE_NAMES[b_type]} {SCALE_NAMES[mode]} {m}x{n}x{k}"
            t.check(bound < 2**53, what + ": exactness precondition (sum |ab| < 2^53 grid steps)")
            t.same_bits(what + ": bit-exact value", out, want)
            t.same_bits(what + ": bit-exact mag", mag, want_mag)

# Large e5m2 values at K = 4096 break the exactness bound: the sum bound of the
# docstring, (128 + 2 kb + 1) u mag.
for mode in range(4):
    m, n, k = 96, 5, 4096
    out, mag, want, want_mag, bound = run_gemm(m, n, k, KB_E4M3, KB_E5M2, mode, 200.0, 20000.0)
    what = f"gemm_fp8 e4m3xe5m2 {SCALE_NAMES[mode]} {m}x{n}x{k} large values"
    t.check(bound >= 2**53, what + ": really past the exactness bound")
    kb = k // 128
    t.within(what, out, want, (128 + 2 * kb + 1) * U * want_mag)
    t.within(what + " mag", mag, want_mag, (128 + 2 * kb + 1) * U * want_mag)


# ---------------------------------------------------------------- matmul
def q4k_blocks(rows, k):
    """Q4_K weights as a quantized model has them (kb_quantize_q4k, ggml's own
    quantizer; test_kquants.py checks it), plus one row of random bytes."""
    w = (rng.standard_normal((rows, k)) * 0.02).astype(np.float32)
    blocks = np.zeros((rows * k // 256, 144), dtype=np.uint8)
    lib.kb_quantize_q4k(ptr(w), ptr(blocks), rows * k // 256)
    blocks = blocks.reshape(rows, -1)
    raw = rng.integers(0, 256, size=(k // 256, 144), dtype=np.uint8)
    raw[:, 0:4] = np.array([1e-3, 5e-4], dtype=np.float16).view(np.uint8)  # d, dmin
    blocks[-1] = raw.reshape(-1)
    return np.ascontiguousarray(blocks)


def q6k_blocks(rows, k):
    w = rng.standard_normal((rows, k)).astype(np.float32)
    blocks = np.zeros((rows * k // 256, 210), dtype=np.uint8)
    lib.kb_quantize_q6k(ptr(w), ptr(blocks), rows * k // 256)
    return blocks.reshape(rows, -1)


def weights(w_type, rows, k):
    """(bytes for the C reference, the decoded fp64 values from an independent decoder)"""
    if w_type in (KB_Q4K, KB_Q6K):
        blocks = q4k_blocks(rows, k) if w_type == KB_Q4K else q6k_blocks(rows, k)
        qt = GGMLQuantizationType.Q4_K if w_type == KB_Q4K else GGMLQuantizationType.Q6_K
        return blocks, dequantize(blocks.reshape(-1), qt).reshape(rows, k).astype(np.float64)
    np_type = {KB_F32: np.float32, KB_F16: np.float16, KB_BF16: ml_dtypes.bfloat16,
               KB_E4M3: ml_dtypes.float8_e4m3fn, KB_E5M2: ml_dtypes.float8_e5m2}[w_type]
    vals = (rng.standard_normal((rows, k)) * (30 if w_type in (KB_E4M3, KB_E5M2) else 0.05)).astype(np_type)
    return np.ascontiguousarray(vals), vals.astype(np.float64)


for w_type in (KB_F32, KB_F16, KB_BF16, KB_E4M3, KB_E5M2, KB_Q4K, KB_Q6K):
    for m, n, k in [(70, 9, 512), (33, 1, 768)]:
        w, w64 = weights(w_type, m, k)
        x = activations((n, k))
        out, mag = empty((n, m)), empty((n, m))
        lib.ref_matmul(m, n, k, w_type, ptr(w), ptr(x), ptr(out), ptr(mag))
        want = x @ w64.T
        want_mag = np.abs(x) @ np.abs(w64).T
        tol = 2 * gamma(k) / (1 - gamma(k)) * mag
        what = f"matmul W {DTYPE_NAMES[w_type]} {m}x{n}x{k}"
        t.within(what, out, want, tol)
        t.within(what + " mag = sum |w x|", mag, want_mag, tol)


# ---------------------------------------------------------------- add, bias_add, swiglu
a = activations(5000)
b = np.concatenate([-a[:100] + rng.standard_normal(100) * 1e-12, activations(4900)])  # cancellation too
y, mag = empty(a.shape), empty(a.shape)
lib.ref_add(a.size, ptr(a), ptr(b), ptr(y), ptr(mag))
t.same_bits("add 5000: y = a + b", y, a + b)
t.same_bits("add 5000: mag = |a| + |b|", mag, np.abs(a) + np.abs(b))

for n, m in [(7, 3584), (1, 100), (13, 3)]:
    x = activations((n, m))
    bias = rng.standard_normal(m)
    y, mag = empty((n, m)), empty((n, m))
    lib.ref_bias_add(n, m, ptr(x), ptr(bias), ptr(y), ptr(mag))
    t.same_bits(f"bias_add {n}x{m}: y = x + bias", y, x + bias[None, :])
    t.same_bits(f"bias_add {n}x{m}: mag = |x| + |bias|", mag, np.abs(x) + np.abs(bias)[None, :])

gate = np.concatenate([rng.standard_normal(20000) * 4, rng.standard_normal(100) * 200,
                       [-800.0, -710.0, -709.0, -700.0, -40.0, 0.0, -0.0, 40.0, 700.0, 800.0]])
up = activations(gate.size)
y, mag = empty(gate.shape), empty(gate.shape)
lib.ref_swiglu(gate.size, ptr(gate), ptr(up), ptr(y), ptr(mag))
want = gate / (1.0 + np.exp(-gate)) * up
tol = 11 * U * np.abs(want) + 8 * TINY
t.within(f"swiglu {gate.size} (gate to +-800: exp under- and overflow)", y, want, tol)
t.within(f"swiglu {gate.size} mag = |y|", mag, np.abs(want), tol)

t.finish()
