"""The fp64 references (ref/ref_ops.c) against independent numpy float64 implementations.

Each op is recomputed here from its definition with numpy (vectorised, different
summation orders, numpy's own exp/cos/sin/pow), on seeded random data, and compared
with a tolerance derived from fp64 error bounds, u = 2^-53:

  rmsnorm    |got - want| <= (k + 8) u |want|          sums of positive terms: the
             relative error of a k-term sum is <= (k - 1) u; sqrt halves it; a few
             more roundings for the division and the weight.
  rope_neox  |got - want| <= 16 u mag                  mag = |x_i cos| + |x_p sin| +
             |angle| (|x_i sin| + |x_p cos|): a few roundings of each product, and
             cos/sin of an angle that is itself rounded (relative u) and evaluated
             by two different libraries (each within ~1 ulp).
  attention  |got - want| <= 4 (L + d) u mag           mag as ref_ops.c defines it;
             d-term dot products, L-term softmax and weighted sums, in both codes.
  gemm_fp8   bit-exact. fp8 values are multiples of 2^-9 (e4m3) or 2^-16 (e5m2), so
             their products sit on a grid of 2^-18 or 2^-25; while sum |terms| stays
             below 2^53 grid steps every partial sum in the reference is exact. The
             oracle here computes the block sums exactly in int64 (numpy integer
             matmul), converts them once to float64 (exact by the same bound, which
             the test asserts instead of assuming), and applies the scales in the
             order the definition gives. Both sides then make the same roundings,
             so they must agree in every bit, and so must mag. A last case with
             large e5m2 values breaks the exactness bound on purpose and is checked
             against the exact oracle with the sum bound (kb_block u |scale| sum|ab|).

kb_case is mirrored with ctypes; its layout (sizeof 176, eps at 64, a_type at 88,
label at 112 on x86-64 / aarch64 Linux) was read once from a C program with
offsetof and is asserted below, so a header change fails loudly here.
"""
import ctypes
import math
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kbref import Tally, load, ptr  # noqa: E402

U = 2.0**-53

# kbench.h enums
KB_F32, KB_F16, KB_BF16, KB_E4M3, KB_E5M2, KB_Q4K, KB_Q6K, KB_I32 = range(8)
OP_DEQUANT, OP_RMSNORM, OP_GEMM, OP_ROPE, OP_ATTENTION, OP_EMBED = range(6)
SCALE_TENSOR, SCALE_OUTER, SCALE_VEC128, SCALE_BLK128 = range(4)
SCALE_NAMES = ["tensor", "outer", "vec128", "blk128"]


class KbCase(ctypes.Structure):
    """Mirror of kb_case (bench/kbench.h), field for field; enums are C ints."""

    _fields_ = [
        ("op", ctypes.c_int),
        ("m", ctypes.c_int64),
        ("n", ctypes.c_int64),
        ("k", ctypes.c_int64),
        ("heads", ctypes.c_int64),
        ("kv_heads", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("kv_len", ctypes.c_int64),
        ("eps", ctypes.c_double),
        ("theta", ctypes.c_double),
        ("max_pos", ctypes.c_int64),
        ("a_type", ctypes.c_int),
        ("b_type", ctypes.c_int),
        ("out_type", ctypes.c_int),
        ("scale_mode", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("label", ctypes.c_char * 64),
    ]


assert ctypes.sizeof(KbCase) == 176, ctypes.sizeof(KbCase)
assert KbCase.eps.offset == 64 and KbCase.a_type.offset == 88 and KbCase.label.offset == 112


def case(**fields):
    c = KbCase()
    for name, value in fields.items():
        setattr(c, name, value)
    return c


lib = load()
P = ctypes.c_void_p
CASE = ctypes.POINTER(KbCase)
lib.kb_set_ref_threads.argtypes = [ctypes.c_int]
lib.ref_rmsnorm.argtypes = [CASE, P, P, P, P]
lib.ref_rope_neox.argtypes = [CASE, P, P, P, P]
lib.ref_attention.argtypes = [CASE, P, P, P, P, P]
lib.ref_gemm_fp8.argtypes = [CASE, P, P, P, P, P, P]
for f in (lib.ref_rmsnorm, lib.ref_rope_neox, lib.ref_attention, lib.ref_gemm_fp8, lib.kb_set_ref_threads):
    f.restype = None
lib.kb_set_ref_threads(2)

rng = np.random.default_rng(20240611)
t = Tally()


def within(what, got, want, tol):
    """got/want/tol arrays; reports the worst element relative to its tolerance."""
    err = np.abs(got - want)
    ok = bool(np.all(np.isfinite(got)) and np.all(err <= tol))
    if not ok:
        bad = np.argmax(np.where(np.isfinite(err), err / np.maximum(tol, 1e-300), np.inf))
        print(f"  {what}: worst at {np.unravel_index(bad, got.shape)}: got {got.flat[bad]!r} "
              f"want {want.flat[bad]!r} tol {tol.flat[bad]:.3g}")
    t.check(ok, what)


def activations(shape, outlier_scale=20.0):
    """Normal values with a few large outliers, as float32 (real activations have them)."""
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.01
    x[mask] *= outlier_scale
    return x.astype(np.float32)


# ---------------------------------------------------------------- rmsnorm
def np_rmsnorm(x, w, eps):
    x64 = x.astype(np.float64)
    rms = np.sqrt(np.mean(x64 * x64, axis=1) + eps)
    return x64 / rms[:, None] * w.astype(np.float64)


for n, k, eps in [(1, 3584, 1e-6), (7, 1000, 1e-5), (16, 3584, 1e-6), (3, 5, 0.25)]:
    x = activations((n, k))
    w = (1.0 + 0.3 * rng.standard_normal(k)).astype(np.float32)
    out = np.empty((n, k))
    mag = np.empty((n, k))
    lib.ref_rmsnorm(ctypes.byref(case(op=OP_RMSNORM, n=n, k=k, eps=eps)), ptr(x), ptr(w), ptr(out), ptr(mag))
    want = np_rmsnorm(x, w, eps)
    tol = (k + 8) * U * np.abs(want)
    within(f"rmsnorm {n}x{k} eps {eps}", out, want, tol)
    within(f"rmsnorm {n}x{k} mag = |x||w|/rms", mag, np.abs(want), tol)


# ---------------------------------------------------------------- rope_neox
def np_rope(x, pos, base):
    n, heads, d = x.shape
    half = d // 2
    angle = pos.astype(np.float64)[:, None] * np.power(float(base), -2.0 * np.arange(half) / d)[None, :]
    c = np.cos(angle)[:, None, :]
    s = np.sin(angle)[:, None, :]
    x0 = x[..., :half].astype(np.float64)
    x1 = x[..., half:].astype(np.float64)
    out = np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)
    a = np.abs(angle)[:, None, :]
    mag = np.concatenate([np.abs(x0 * c) + np.abs(x1 * s) + a * (np.abs(x0 * s) + np.abs(x1 * c)),
                          np.abs(x0 * s) + np.abs(x1 * c) + a * (np.abs(x0 * c) + np.abs(x1 * s))], axis=-1)
    return out, mag


positions = np.array([0, 1, 2, 3, 100, 1023, 4095, 32767, 32768, 65536, 100000, 131071, 131072], dtype=np.int32)
for base in (1e6, 1e4):
    for heads, d in [(4, 128), (3, 64), (2, 96)]:
        x = activations((len(positions), heads, d))
        out = np.empty(x.shape)
        mag = np.empty(x.shape)
        c = case(op=OP_ROPE, n=len(positions), heads=heads, head_dim=d, theta=base, max_pos=131073)
        lib.ref_rope_neox(ctypes.byref(c), ptr(x), ptr(positions), ptr(out), ptr(mag))
        want, want_mag = np_rope(x, positions, base)
        within(f"rope_neox base {base:g} heads {heads} d {d} pos 0..131072", out, want, 16 * U * want_mag)
        within(f"rope_neox base {base:g} d {d} mag", mag, want_mag, 16 * U * want_mag)


# ---------------------------------------------------------------- attention
def np_attention(q, k, v, kv_len):
    n, heads, d = q.shape
    kv_heads = k.shape[1]
    group = heads // kv_heads
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    out = np.empty((n, heads, d))
    mag = np.empty((n, heads, d))
    qpos = kv_len - n + np.arange(n)
    visible = np.arange(kv_len)[None, :] <= qpos[:, None]  # [n][kv_len]
    for h in range(heads):
        g = h // group
        kh, vh = k64[:, g, :], v64[:, g, :]
        s = q64[:, h, :] @ kh.T / math.sqrt(d)
        s_abs = np.abs(q64[:, h, :]) @ np.abs(kh).T / math.sqrt(d)
        s = np.where(visible, s, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        o = p @ vh
        out[:, h, :] = o
        # mag_c = sum_j p_j |v_jc| + sum_j p_j |v_jc - out_c| (S_j + 1)
        sens = np.where(visible, s_abs + 1.0, 0.0)
        mag[:, h, :] = p @ np.abs(vh) + np.einsum("ij,ijc->ic", p * sens, np.abs(vh[None, :, :] - o[:, None, :]))
    return out, mag


for n, kv_len, heads, kv_heads, d in [
    (1, 300, 28, 4, 128),  # decode, GQA ratio 7, Qwen2.5-7B heads
    (1, 77, 4, 4, 64),  # decode, ratio 1
    (48, 48, 14, 2, 128),  # prefill, ratio 7
    (33, 33, 3, 3, 80),  # prefill, ratio 1, head_dim 80
    (16, 100, 7, 1, 32),  # a chunk of prefill behind a cache, ratio 7
]:
    q = activations((n, heads, d))
    k = activations((kv_len, kv_heads, d))
    v = rng.standard_normal((kv_len, kv_heads, d)).astype(np.float32)
    out = np.empty((n, heads, d))
    mag = np.empty((n, heads, d))
    c = case(op=OP_ATTENTION, n=n, kv_len=kv_len, heads=heads, kv_heads=kv_heads, head_dim=d)
    lib.ref_attention(ctypes.byref(c), ptr(q), ptr(k), ptr(v), ptr(out), ptr(mag))
    want, want_mag = np_attention(q, k, v, kv_len)
    what = f"attention n {n} kv_len {kv_len} heads {heads}/{kv_heads} d {d}"
    within(what, out, want, 4 * (kv_len + d) * U * want_mag)
    within(what + " mag", mag, want_mag, 4 * (kv_len + d) * U * want_mag)


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
    out = np.empty((n, m))
    mag = np.empty((n, m))
    c = case(op=OP_GEMM, m=m, n=n, k=k, a_type=a_type, b_type=b_type, out_type=KB_F32, scale_mode=mode)
    lib.ref_gemm_fp8(ctypes.byref(c), ptr(w8), ptr(x8), ptr(sa), ptr(sb), ptr(out), ptr(mag))
    want, want_mag, bound = np_gemm_exact(wi, xi, gw, gx, sa, sb, mode, m, n, k)
    return out, mag, want, want_mag, bound


names = {KB_E4M3: "e4m3", KB_E5M2: "e5m2"}
for a_type, b_type, spread_x in [(KB_E4M3, KB_E4M3, 30.0), (KB_E4M3, KB_E5M2, 3.0)]:
    for mode in range(4):
        for m, n, k in [(200, 9, 300), (130, 4, 256), (64, 33, 1000)]:
            out, mag, want, want_mag, bound = run_gemm(m, n, k, a_type, b_type, mode, 40.0, spread_x)
            what = f"gemm_fp8 {names[a_type]}x{names[b_type]} {SCALE_NAMES[mode]} {m}x{n}x{k}"
            t.check(bound < 2**53, what + ": exactness precondition (sum |ab| < 2^53 grid steps)")
            exact = np.array_equal(out, want) and np.array_equal(mag, want_mag)
            if not exact:
                i = np.argmax(np.abs(out - want))
                print(f"  {what}: max |diff| {np.abs(out - want).max():.3g} at {i}, got {out.flat[i]!r} "
                      f"want {want.flat[i]!r}; mag max |diff| {np.abs(mag - want_mag).max():.3g}")
            t.check(exact, what + ": bit-exact (value and mag)")

# Large e5m2 values at K = 4096 break the exactness bound: now only the sum bound holds,
# |got - exact| <= (128 + kb + 2) u mag, for the reference's block sums and block adds.
for mode in range(4):
    m, n, k = 96, 5, 4096
    out, mag, want, want_mag, bound = run_gemm(m, n, k, KB_E4M3, KB_E5M2, mode, 200.0, 20000.0)
    what = f"gemm_fp8 e4m3xe5m2 {SCALE_NAMES[mode]} {m}x{n}x{k} large values"
    t.check(bound >= 2**53, what + ": really past the exactness bound")
    # the oracle's own conversion of a >2^53 block sum to float64 rounds too: one more u
    within(what, out, want, (128 + k // 128 + 4) * U * want_mag)
    within(what + " mag", mag, want_mag, (128 + k // 128 + 4) * U * want_mag)

t.finish()
