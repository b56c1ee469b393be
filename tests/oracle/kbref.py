"""Load kbench's C references and codecs (libkbref_py.so) for the Python oracle tests.

The library path comes from the KB_REF_LIB environment variable (CTest sets it).
declare_refs() gives the references of ref/ref.h their ctypes signatures; the two
small argument structs are mirrored field for field (int64 sizes, then C enums as
ints), which is the whole of what Python needs to know of the C side."""
import ctypes
import os
import sys

import numpy as np

# ref/types.h
KB_F32, KB_F16, KB_BF16, KB_E4M3, KB_E5M2, KB_Q4K, KB_Q6K, KB_I32 = range(8)
SCALE_TENSOR, SCALE_OUTER, SCALE_VEC128, SCALE_BLK128 = range(4)
SCALE_NAMES = ["tensor", "outer", "vec128", "blk128"]
DTYPE_NAMES = ["f32", "f16", "bf16", "e4m3", "e5m2", "q4_k", "q6_k", "i32"]


class GemmFp8Dims(ctypes.Structure):
    """ref_gemm_fp8_dims (ref/ref.h)."""

    _fields_ = [("m", ctypes.c_int64), ("n", ctypes.c_int64), ("k", ctypes.c_int64),
                ("a_type", ctypes.c_int), ("b_type", ctypes.c_int), ("scale_mode", ctypes.c_int)]


class AttentionDims(ctypes.Structure):
    """ref_attention_dims (ref/ref.h)."""

    _fields_ = [("n", ctypes.c_int64), ("kv_len", ctypes.c_int64), ("heads", ctypes.c_int64),
                ("kv_heads", ctypes.c_int64), ("head_dim", ctypes.c_int64)]


class QuantFp8Args(ctypes.Structure):
    """ref_quant_fp8_args (ref/ref.h)."""

    _fields_ = [("rows", ctypes.c_int64), ("k", ctypes.c_int64), ("in_type", ctypes.c_int),
                ("fp8", ctypes.c_int), ("mode", ctypes.c_int), ("flush", ctypes.c_int)]


def load():
    path = os.environ.get("KB_REF_LIB")
    if not path or not os.path.exists(path):
        sys.exit(f"KB_REF_LIB is not set to the built libkbref_py.so (got {path!r})")
    return ctypes.CDLL(path)


def declare_refs(lib):
    """argtypes/restype of every function of ref/ref.h the tests call."""
    P, I64, D, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    sigs = {
        "kb_set_ref_threads": [INT],
        "ref_rmsnorm": [I64, I64, D, P, P, P, P],
        "ref_rope_neox": [I64, I64, I64, D, P, P, P, P],
        "ref_attention": [ctypes.POINTER(AttentionDims), P, P, P, P, P],
        "ref_gemm_fp8": [ctypes.POINTER(GemmFp8Dims), P, P, P, P, P, P],
        "ref_matmul": [I64, I64, I64, INT, P, P, P, P],
        "ref_add": [I64, P, P, P, P],
        "ref_bias_add": [I64, I64, P, P, P, P],
        "ref_swiglu": [I64, P, P, P, P],
        "ref_quant_fp8": [ctypes.POINTER(QuantFp8Args), P, P, P, P],
        "ref_dequant": [INT, P, I64, I64, P, P],
        "ref_embed": [INT, P, I64, I64, P, I64, P, P],
        "kb_quantize_q4k": [P, P, I64],
        "kb_quantize_q6k": [P, P, I64],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = None
    return lib


def ptr(a: np.ndarray):
    """A numpy array's data as a void pointer (the array must stay alive)."""
    assert a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.c_void_p)


class Tally:
    """Counts checks; finish() prints the closing line CTest logs and sets the exit code."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}")

    def within(self, what, got, want, tol):
        """|got - want| <= tol elementwise (arrays), NaN never passes; prints the worst
        element relative to its tolerance when it fails."""
        err = np.abs(got - want)
        ok = bool(np.all(err <= tol))
        if not ok:
            ratio = np.where(np.isnan(err), np.inf, err / np.maximum(tol, 1e-300))
            bad = int(np.argmax(ratio))
            print(f"  {what}: worst at {np.unravel_index(bad, got.shape)}: got {got.flat[bad]!r} "
                  f"want {want.flat[bad]!r} tol {tol.flat[bad]:.3g} ({np.count_nonzero(~(err <= tol))} beyond)")
        self.check(ok, what)

    def same_bits(self, what, got, want):
        """Bit-identical float64 arrays (NaN payloads included)."""
        g, w = np.ascontiguousarray(got, dtype=np.float64), np.ascontiguousarray(want, dtype=np.float64)
        ok = g.shape == w.shape and np.array_equal(g.view(np.uint64), w.view(np.uint64))
        if not ok and g.shape == w.shape:
            bad = np.flatnonzero(g.view(np.uint64) != w.view(np.uint64))
            i = int(bad[0])
            print(f"  {what}: {bad.size} differ, first at {i}: got {g.flat[i]!r} want {w.flat[i]!r}")
        self.check(ok, what)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)


def _dispatch_info():
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return __cpu_dispatch__, __cpu_features__


def simd_status(tally):
    """Print which of numpy's dispatched SIMD targets are on in this process; under
    run_simd_limited.py (KB_EXPECT_SIMD_LIMITED=1) every one of them must be off."""
    dispatch, features = _dispatch_info()
    on = [f for f in dispatch if features.get(f)]
    print(f"numpy {np.__version__}: dispatched SIMD targets on: {' '.join(on) or 'none'} "
          f"(NPY_DISABLE_CPU_FEATURES={os.environ.get('NPY_DISABLE_CPU_FEATURES', '')!r})")
    if os.environ.get("KB_EXPECT_SIMD_LIMITED") == "1":
        tally.check(not on, f"numpy SIMD dispatch limited: targets still on: {on}")
