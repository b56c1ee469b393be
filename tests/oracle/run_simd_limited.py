"""Run one oracle test with numpy's SIMD dispatch turned off:
    run_simd_limited.py TEST.py [args...]

numpy picks, per ufunc, an implementation for the best CPU target it was built for
and the CPU has (its "dispatched" targets: AVX2/FMA3 and AVX-512 groups on x86-64);
their exp/power/sin/cos differ from glibc's by an ulp here and there. The oracle
tests' bounds are derived to hold for either, so the suite runs them both ways.
NPY_DISABLE_CPU_FEATURES names the targets to turn off; numpy refuses names it was
not built with or the CPU lacks, so the list is read from numpy's own runtime info
(the dispatched targets this CPU has) in a child interpreter, and the test then runs
with it set. KB_EXPECT_SIMD_LIMITED=1 makes the test itself check that none of them
is still on (kbref.check_simd_limited), so this run cannot quietly be the other."""
import os
import subprocess
import sys

PROBE = """
try:
    from numpy._core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f
except ImportError:  # numpy < 2
    from numpy.core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f
print(" ".join(t for t in d if f.get(t)))
"""

if len(sys.argv) < 2:
    sys.exit("usage: run_simd_limited.py TEST.py [args...]")
env = dict(os.environ)
env.pop("NPY_DISABLE_CPU_FEATURES", None)
targets = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True, capture_output=True,
                         text=True).stdout.strip()
env["NPY_DISABLE_CPU_FEATURES"] = targets
env["KB_EXPECT_SIMD_LIMITED"] = "1"
print(f"run_simd_limited: NPY_DISABLE_CPU_FEATURES={targets!r}", flush=True)
sys.exit(subprocess.run([sys.executable] + sys.argv[1:], env=env).returncode)
