"""--tune: kernel tunables as sweep axes (bench/tune.c, kernels/cuda/cuda_plan.c).

Without a device: --list-axes announces exactly the tuned points (the cuda front
lists its variants without a GPU), --variant selects among them, every malformed
--tune exits 2 with one line, and a run's cuda rows are skipped, never passed.
With the fake CUDA driver (tests/fake_libcuda.c; the worker, the socket and the
fronts are real): the tuned points run, a point a variant cannot take is a
not_supported row with the reason, a block beyond what the compiled kernel takes is
one too, and --resume picks up exactly the points a file lacks.

Usage: test_tune.py KBENCH SOURCE_DIR FAKE_LIBCUDA"""
import csv
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))
from kbref import Tally  # noqa: E402

kbench, src, fake = sys.argv[1], sys.argv[2], sys.argv[3]
t = Tally()
tmp = tempfile.mkdtemp()
NO_DEVICE = {"KB_CUDA_LIBCUDA": os.path.join(tmp, "no-libcuda.so")}  # a probe that fails, like CI's
FAKE = {"KB_CUDA_LIBCUDA": fake}


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("KB_TEST_VARIANTS", None)
    e.pop("KB_CUDA_UNVERIFIED", None)
    e.update(env or NO_DEVICE)
    p = subprocess.run([kbench, *args], capture_output=True, text=True, env=e, timeout=600)
    return p.returncode, p.stdout, p.stderr


def points(out):
    """(backend, variant, detail) of every row --list-axes announces."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"^  (\S+) +(\S+) +(.*)$", line)
        if m:
            rows.append(m.groups())
    return rows


def expect_usage(args, pattern):
    rc, out, err = run(*args)
    lines = [l for l in err.splitlines() if l.strip()]
    ok = rc == 2 and len(lines) == 1 and re.search(pattern, lines[0]) is not None and not out.strip()
    t.check(ok, f"{args}: want exit 2 and one line matching {pattern!r}, got rc={rc} stdout={out!r} stderr={err!r}")


# ---- --list-axes: exactly the points, before any device is touched -------------------
rc, out, err = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda", "--tune", "BLOCK=64,128",
                   "--tune", "ITEMS=2,4", "--list-axes")
want = [f"{v}[BLOCK={b},ITEMS={i}]" for v in ("v1_b256", "v2_b256_i4", "v2_b128_i8", "v2_b256_i4_w") for b in (64, 128) for i in (2, 4)]
got = points(out)
t.check(rc == 0 and [g[1] for g in got] == want and all(g[0] == "cuda" for g in got),
        f"2 x 2 points of rmsnorm's 4 variants, in order: rc={rc} {got!r} {err!r}")
t.check(out.strip().endswith("1 cases x 4 tune points: 16 rows (cuda 16)"), f"the count line: {out!r}")
det = {g[1]: g[2] for g in got}
t.check(det.get("v2_b256_i4[BLOCK=64,ITEMS=2]") == "rmsnorm_v2 -DBLOCK=64 -DITEMS=2 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0",
        f"the detail is the point's -D options: {det!r}")
t.check("no tunable ITEMS" in det.get("v1_b256[BLOCK=64,ITEMS=2]", "") and
        det["v1_b256[BLOCK=64,ITEMS=2]"].startswith("not_supported:"),
        f"a point v1 cannot take is announced as not_supported, with why: {det!r}")

# 0 is a value (PDL=0: a plain launch), and the point's -D option reaches the detail
rc, out, err = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda", "--tune", "PDL=0,1", "--list-axes")
det = {g[1]: g[2] for g in points(out)}
t.check(rc == 0 and det.get("v1_b256[PDL=0]") == "rmsnorm_v1 -DBLOCK=256 -DPDL=0" and
        det.get("v2_b128_i8[PDL=1]") == "rmsnorm_v2 -DBLOCK=128 -DITEMS=8 -DPDL=1 -DLDHINT=1 -DSTHINT=1 -DWPRE=0" and len(det) == 8,
        f"PDL=0,1 on rmsnorm's 4 variants: rc={rc} {det!r} {err!r}")

# the range form, and several ops: each op's variants at each point
rc, out, _ = run("--op", "add,swiglu", "--shape", "4x512", "--backend", "cuda", "--tune", "BLOCK=32:1024:*2",
                 "--list-axes")
got = points(out)
t.check(rc == 0 and len(got) == 2 * 2 * 6 and out.strip().endswith("2 cases x 6 tune points: 24 rows (cuda 24)") and
        "v2_b256[BLOCK=1024]" in [g[1] for g in got], f"BLOCK=32:1024:*2 is 6 points: {out!r}")

# a backend without tunables: one not_supported row per case, said before the run
rc, out, _ = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cpu,cuda", "--tune", "BLOCK=128", "--list-axes")
got = points(out)
t.check(rc == 0 and ("cpu", "-", "not_supported: no tunables") in got and len(got) == 5 and
        out.strip().endswith("(cpu 1 not_supported, cuda 4)"), f"cpu has no tunables: {out!r}")

# --variant: a plain name selects its points, a tuned name its one point (any order)
rc, out, _ = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda", "--tune", "BLOCK=64,128",
                 "--variant", "v2_b128_i8", "--list-axes")
t.check(rc == 0 and [g[1] for g in points(out)] == ["v2_b128_i8[BLOCK=64]", "v2_b128_i8[BLOCK=128]"],
        f"--variant v2_b128_i8: {out!r}")
rc, out, _ = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda",
                 "--variant", "v2_b256_i4[ITEMS=8,BLOCK=128]", "--list-axes")
t.check(rc == 0 and [g[1] for g in points(out)] == ["v2_b256_i4[BLOCK=128,ITEMS=8]"],
        f"a tuned --variant without --tune runs that point alone: {out!r}")
# a plain name beside a tuned one is that variant as written, not at the tuned one's point
rc, out, _ = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda",
                 "--variant", "v1_b256,v2_b256_i4[BLOCK=128],v2_b128*", "--list-axes")
t.check(rc == 0 and sorted(g[1] for g in points(out)) == ["v1_b256", "v2_b128_i8", "v2_b256_i4[BLOCK=128]"] and
        "2 tune points" in out, f"--variant v1_b256,v2_b256_i4[BLOCK=128],v2_b128*: {out!r}")
rc, out, err = run("--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda", "--tune", "BLOCK=64",
                   "--variant", "v2_b256_i4[BLOCK=128]", "--list-axes")
t.check(rc == 2 and "matched no tuned point" in err, f"a point --tune does not make: rc={rc} {err!r}")

# without --tune, --list-axes is what it was
rc, out, _ = run("--op", "rmsnorm", "--shape", "64x1024", "--list-axes")
t.check(rc == 0 and out.strip().endswith("1 cases") and "[" not in out, f"no --tune: the cases only: {out!r}")

# ---- bad --tune: exit 2, one line ----------------------------------------------------
base = ["--op", "rmsnorm", "--shape", "64x1024", "--backend", "cuda"]
expect_usage(base + ["--variant", "v1_b256[PDL=01]"], r"PDL needs an integer in \[0, 1048576\]")
expect_usage(base + ["--tune"], r"--tune needs a value")
expect_usage(base + ["--tune", "BLOCK"], r"--tune: 'BLOCK' is not NAME=VALUES")
expect_usage(base + ["--tune", "BLOCK="], r"--tune: 'BLOCK=' is not NAME=VALUES")
expect_usage(base + ["--tune", "block=128"], r"--tune: 'block' is not a tunable name")
expect_usage(base + ["--tune", "BLOCK=abc"], r"malformed --tune BLOCK \(list 'abc'\)")
expect_usage(base + ["--tune", "BLOCK=2000000"], r"--tune BLOCK: 2000000 is out of range \(0 to 1048576\)")
expect_usage(base + ["--tune", "BLOCK=128,128"], r"--tune BLOCK: 128 is given twice")
expect_usage(base + ["--tune", "BLOCK=9:1"], r"malformed range in '9:1'")
expect_usage(base + ["--tune", "BLOCK=1:1000"], r"--tune BLOCK: more than 64 values")
expect_usage(base + ["--tune", "BLOCK=64", "--tune", "BLOCK=128"], r"--tune: BLOCK given twice")
expect_usage(base + ["--tune", "BLOCK=32:1024:*2", "--tune", "ITEMS=1:16"], r"--tune: 96 points .*at most 64")
expect_usage(base + ["--tune", "A=1", "--tune", "B=1", "--tune", "C=1", "--tune", "D=1", "--tune", "E=1"],
             r"--tune: more than 4 tunables")
expect_usage(base + ["--tune", "BLOK=128"], r"no variant of the selected ops and backends has a tunable BLOK "
                                            r"\(theirs: BLOCK, PDL, ITEMS, LDHINT, STHINT, WPRE\)")
expect_usage(["--op", "rmsnorm", "--shape", "64x1024", "--backend", "cpu", "--tune", "BLOCK=128"],
             r"--tune: none of the selected backends has tunables")
expect_usage(base + ["--variant", "v1_b256[BLOCK=128"], r"--variant: 'v1_b256\[BLOCK=128' is malformed")
expect_usage(base + ["--variant", "v1_b256[BLOCK=x]"], r"--variant: 'v1_b256\[BLOCK=x\]': BLOCK needs an integer")

# ---- a run without a device: the cuda rows are skipped, one per case ----------------
rc, out, err = run("--op", "rmsnorm", "--shapes", "smoke", "--backend", "cuda", "--tune", "BLOCK=64,128",
                   "--no-timing")
t.check(rc == 0 and re.search(r"rows: 0 pass, 0 fail, 0 error, 0 not_supported, 3 skipped", out) is not None,
        f"no device: 3 cases, 3 skipped rows: rc={rc} {out[-300:]!r} {err!r}")


# ---- on the fake CUDA driver: tuned points run through the worker ---------------------
def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


out_csv = os.path.join(tmp, "tune.csv")
rc, out, err = run("--op", "rmsnorm", "--shapes", "smoke", "--backend", "cuda", "--variant", "v1_b256",
                   "--tune", "BLOCK=64,96,512", "--no-timing", "--quiet", "--csv", out_csv, env=FAKE)
r = rows(out_csv) if os.path.exists(out_csv) else []
by = {}
for row in r:
    by.setdefault(row["variant"], []).append(row)
t.check(rc == 0 and len(r) == 9 and sorted(by) == ["v1_b256[BLOCK=512]", "v1_b256[BLOCK=64]", "v1_b256[BLOCK=96]"],
        f"3 cases x 3 points of v1_b256: rc={rc} {sorted(by)!r} {err!r}")
missing = [{"verdict": "-", "detail": "-", "reason": "-"}]
t.check(all(x["verdict"] == "pass" and x["detail"] == "rmsnorm_v1 -DBLOCK=64 -DPDL=0" for x in by.get("v1_b256[BLOCK=64]", missing)),
        f"BLOCK=64 runs in the worker and passes: {by.get('v1_b256[BLOCK=64]')!r}")
t.check(all(x["verdict"] == "pass" for x in by.get("v1_b256[BLOCK=512]", missing)), "BLOCK=512 passes")
t.check(all(x["verdict"] == "not_supported" and "BLOCK=96 is outside rmsnorm's range" in x["reason"]
            for x in by.get("v1_b256[BLOCK=96]", missing)), f"BLOCK=96 is not_supported, with why: {r!r}")

# a kernel that takes at most 256 threads (its registers): BLOCK=512 is not_supported
rc, out, err = run("--op", "rmsnorm", "--shape", "4x3584", "--backend", "cuda", "--variant", "v1_b256",
                   "--tune", "BLOCK=256,512", "--no-timing", env=dict(FAKE, KB_FAKE_CUDA_MAX_THREADS="256"))
t.check(rc == 0 and re.search(r"v1_b256\[BLOCK=256\] +pass", out) and
        re.search(r"v1_b256\[BLOCK=512\] +not_supported", out) and "takes at most 256" in out,
        f"the device limit: rc={rc} {out!r} {err!r}")

# --resume: a file with some points gets exactly the others, once
res = os.path.join(tmp, "resume.csv")
common = ["--op", "rmsnorm", "--shapes", "smoke", "--backend", "cuda", "--variant", "v1_b256", "--no-timing", "--quiet"]
run(*common, "--csv", res, env=FAKE)  # the variant as written first
rc, _, err = run(*common, "--tune", "BLOCK=64", "--resume", res, env=FAKE)
rc2, _, err2 = run(*common, "--tune", "BLOCK=64,128", "--resume", res, env=FAKE)
names = sorted(x["variant"] for x in rows(res))
want = sorted(["v1_b256"] * 3 + ["v1_b256[BLOCK=64]"] * 3 + ["v1_b256[BLOCK=128]"] * 3)
t.check(rc == 0 and rc2 == 0 and names == want,
        f"--resume runs the points the file lacks, each once: {names!r} {err!r} {err2!r}")

sys.exit(t.finish())
