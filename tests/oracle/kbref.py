"""Load kbench's C references and codecs (libkbref_py.so) for the Python oracle tests.

The library path comes from the KB_REF_LIB environment variable (CTest sets it).
Each test declares the argtypes of the functions it calls."""
import ctypes
import os
import sys

import numpy as np


def load():
    path = os.environ.get("KB_REF_LIB")
    if not path or not os.path.exists(path):
        sys.exit(f"KB_REF_LIB is not set to the built libkbref_py.so (got {path!r})")
    return ctypes.CDLL(path)


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

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)
