"""The harness catches what it exists to catch. Test-only cpu variants
(KB_TEST_VARIANTS=1) each break one thing; each must give a failing row with the
right counter, while the correct variant passes on the same cases.
Usage: test_harness.py KBENCH"""
import csv
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))
from kbref import Tally  # noqa: E402

kbench = sys.argv[1]
t = Tally()
tmp = tempfile.mkdtemp()


def rows(op, shape, variants, extra=()):
    path = os.path.join(tmp, "out.csv")
    p = subprocess.run([kbench, "--op", op, "--shape", shape, "--backend", "cpu", "--variant", variants,
                        "--no-timing", "--quiet", "--csv", path, *extra],
                       env=dict(os.environ, KB_TEST_VARIANTS="1"), capture_output=True, text=True, timeout=600)
    with open(path) as f:
        return p.returncode, {r["variant"]: r for r in csv.DictReader(f)}


# every op: an unwritten element, a NaN, and the correct variant on the same case
shapes = {"dequant_q4k": "8x512", "rmsnorm": "4x3584", "gemm_fp8": "64x4x256", "rope_neox": "3x4x128",
          "attention": "4x40x7x1x64", "embed": "4x512x1000", "gemm_f32": "64x4x256", "add": "4x3584",
          "bias_add": "4x512", "swiglu": "4x512", "quant_fp8": "4x512", "weight_fp8": "64x512"}
for op, shape in shapes.items():
    rc, r = rows(op, shape, "f32,test_unwritten,test_nan")
    t.check(rc == 1, f"{op}: exit 1 when a row fails (got {rc})")
    t.check(r["f32"]["verdict"] == "pass", f"{op}: the correct cpu kernel passes: {r['f32']['reason']}")
    u, n = r["test_unwritten"], r["test_nan"]
    t.check(u["verdict"] == "fail" and u["n_unwritten"] == "1", f"{op}: one unwritten element caught: {u['reason']}")
    t.check(n["verdict"] == "fail" and n["n_nan"] == "1", f"{op}: one NaN caught: {n['reason']}")

# off by 1e-3 in one element: caught where 1e-3 is beyond what fp32 rounding explains.
# (RoPE at position ~32768 has an fp32 angle error of ~2e-3 rad, so 1e-3 is honest
# rounding there: the test keeps positions below 2, where it is not.)
# (fp8 outputs step two codes: within half a step of the exact quotient, one code toward
# a quotient near a midpoint is a legal rounding)
for op, shape, extra in [("rmsnorm", "4x3584", []), ("rope_neox", "3x4x128", ["--max-pos", "2"]),
                         ("attention", "4x40x7x1x64", []), ("dequant_q4k", "8x512", []),
                         ("embed", "4x512x1000", []), ("gemm_f32", "64x4x256", []), ("add", "4x3584", []),
                         ("bias_add", "4x512", []), ("swiglu", "4x512", []),
                         ("quant_fp8", "4x512", ["--scale", "tensor,outer,vec128", "--flush", "0,1"]),
                         ("weight_fp8", "64x512", ["--scale", "tensor,outer,vec128,blk128"]),
                         ("gemm_fp8", "64x4x256", ["--out-type", "f32"])]:
    path = os.path.join(tmp, "off.csv")
    p = subprocess.run([kbench, "--op", op, "--shape", shape, "--backend", "cpu", "--variant", "f32,test_off1e3",
                        "--no-timing", "--quiet", "--csv", path, *extra],
                       env=dict(os.environ, KB_TEST_VARIANTS="1"), capture_output=True, text=True, timeout=600)
    got = list(csv.DictReader(open(path)))
    off = [g for g in got if g["variant"] == "test_off1e3"]
    good = [g for g in got if g["variant"] == "f32"]
    t.check(len(off) >= 1 and all(o["verdict"] == "fail" and o["n_bad"] == "1" for o in off),
            f"{op} {extra}: off by 1e-3 caught in every case: {[o['reason'] for o in off]}")
    t.check(len(good) == len(off) and all(g["verdict"] == "pass" for g in good), f"{op} {extra}: f32 passes")

# eps 1e-5 instead of 1e-6: matters where mean(x^2) is small (early-layer rows);
# the generator's rows span scales 1e-3..10, and 64 rows include small ones
rc, r = rows("rmsnorm", "64x3584", "f32,test_eps1e5")
t.check(r["f32"]["verdict"] == "pass", "rmsnorm eps 1e-6 correct passes")
e = r["test_eps1e5"]
t.check(e["verdict"] == "fail" and int(e["n_bad"]) > 0, f"rmsnorm with eps 1e-5 fails: {e['reason']}")
# ... and the case's eps is what the reference uses: with --eps 1e-5 the same kernel passes
rc, r = rows("rmsnorm", "64x3584", "test_eps1e5", ["--eps", "1e-5"])
t.check(r["test_eps1e5"]["verdict"] == "pass", "with --eps 1e-5 the eps-1e-5 kernel passes")

# the ops' own planted bugs, each caught by its own op (the forward-pass tests name them)
for op, shape, variant, extra in [("embed", "4x512x1000", "test_wrong_row", []),
                                  ("attention", "4x40x7x1x64", "test_skip_key", []),
                                  ("gemm_fp8", "64x4x256", "test_no_bscale", ["--scale", "tensor,outer,vec128,blk128"])]:
    path = os.path.join(tmp, "planted.csv")
    subprocess.run([kbench, "--op", op, "--shape", shape, "--backend", "cpu", "--variant", variant, "--no-timing",
                    "--quiet", "--csv", path, *extra], env=dict(os.environ, KB_TEST_VARIANTS="1"),
                   capture_output=True, text=True, timeout=600)
    got = list(csv.DictReader(open(path)))
    t.check(len(got) >= 1 and all(g["verdict"] == "fail" and int(g["n_bad"]) > 0 for g in got),
            f"{op} {variant} {extra}: caught: {[g['reason'] for g in got]}")

# --best: one row per case and backend, the fastest that passed, never a failing one
# (--repeat 2: test_nondet, which passes parity, fails as nondeterministic)
path = os.path.join(tmp, "best.csv")
p = subprocess.run([kbench, "--op", "rmsnorm", "--shape", "64x3584", "--backend", "cpu", "--best", "--reps", "3",
                    "--max-time", "0.05", "--repeat", "2", "--quiet", "--csv", path],
                   env=dict(os.environ, KB_TEST_VARIANTS="1"),
                   capture_output=True, text=True, timeout=600)
got = list(csv.DictReader(open(path)))
winners = [g for g in got if g["selection"]]
t.check(len(winners) == 1 and winners[0]["verdict"] == "pass" and winners[0]["variant"] == "f32"
        and "best of 1 passing" in winners[0]["selection"], f"--best picks the passing f32: {winners}")
t.check(all(g["verdict"] in ("fail", "error") for g in got if not g["selection"]),
        f"--best keeps every failing row: {[(g['variant'], g['verdict']) for g in got]}")

# rotate mode times back to back over copies
path = os.path.join(tmp, "rot.csv")
p = subprocess.run([kbench, "--op", "rmsnorm", "--shape", "4x3584", "--backend", "cpu", "--mode", "rotate", "--reps",
                    "3", "--max-time", "0.05", "--quiet", "--csv", path], capture_output=True, text=True, timeout=600)
got = list(csv.DictReader(open(path)))
t.check(p.returncode == 0 and len(got) == 1 and got[0]["mode"] == "rotate" and int(got[0]["rotate_copies"]) >= 2
        and float(got[0]["time_med_us"]) > 0, f"rotate mode: {got}")

# --repeat: a variant whose output changes from run to run fails as nondeterministic,
# though it passes parity; without --repeat nothing looks at it; the correct one passes
for op, shape in (("rmsnorm", "4x3584"), ("gemm_fp8", "64x4x256"), ("quant_fp8", "4x512")):
    rc, r = rows(op, shape, "f32,test_nondet", ["--repeat", "4"])
    f, nd = r["f32"], r["test_nondet"]
    t.check(rc == 1 and f["verdict"] == "pass" and f["repeats"] == "4" and f["reason"] == "",
            f"{op} --repeat 4: f32 passes with 4 equal hashes: {f['verdict']} {f['repeats']} {f['reason']}")
    t.check(nd["verdict"] == "fail" and nd["repeats"] == "2" and "nondeterministic: run 2 of 4" in nd["reason"],
            f"{op} --repeat 4: test_nondet is caught at run 2: {nd['verdict']} {nd['repeats']} {nd['reason']}")
    rc, r = rows(op, shape, "test_nondet")
    t.check(r["test_nondet"]["repeats"] == "", f"{op}: no --repeat, no repeats column: {r['test_nondet']['repeats']!r}")

# seeds: the same seed gives the same output bytes, another seed other inputs
h = []
for seed in ("7", "7", "8"):
    _, r = rows("gemm_fp8", "64x4x256", "f32", ["--seed", seed])
    h.append(r["f32"]["hash"])
t.check(h[0] == h[1] and h[0] != h[2], f"output hash: same seed same bytes, other seed differs: {h}")
t.finish()
