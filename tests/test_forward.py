"""kbench forward on synthetic:tiny and on GGUF files written by the gguf package.

- every recipe on cpu (and vulkan when a Vulkan device exists): exit 0, every isolated
  row passes, the chained drift within the documented bounds (docs/FORWARD.md):
  f32: every chained node's rel_l2 <= 1e-5 (float32 rounding over 3 layers: a few
  sqrt(K) u32 per op, ~5e-7 measured); FP8 recipes: every chained cosine >= 0.98 and
  the logits' cosine >= 0.99 (e4m3 keeps 4 significant bits: a GEMM input's relative
  rounding error is up to 2^-4, ~3% rms after the dot products);
- the planted bugs are named: the right op at the right layer, exit 1;
- --repeat: the logits are bit-identical on fresh contexts;
- --prefer-from: a node runs the variant a kbench CSV timed fastest (passing) at its op
  and shape; a bad file exits 2 with one line;
- GGUF: a file from gguf's GGUFWriter loads (names, types, dims as GGUFReader sees them),
  eps and rope base come from it; every corruption class exits 2 with its message.
Usage: test_forward.py KBENCH"""
import csv
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))
sys.path.insert(0, os.path.dirname(__file__))
from kbref import Tally  # noqa: E402
from tiny_gguf import write_model  # noqa: E402

kbench = sys.argv[1]
t = Tally()
tmp = tempfile.mkdtemp()
RECIPES = ["f32", "q4k-fp8-tensor", "q4k-fp8-row", "fp8-block"]


def forward(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([kbench, "forward", *args], capture_output=True, text=True, env=e, timeout=900)
    return p.returncode, p.stdout, p.stderr


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def backends():
    p = subprocess.run([kbench, "--list-backends"], capture_output=True, text=True, timeout=120)
    have = ["cpu"]
    for line in p.stdout.splitlines():
        if line.startswith("vulkan ") and " available " in line:
            have.append("vulkan")
    return have


for backend in backends():
    for recipe, flush in [(r, False) for r in RECIPES] + [("q4k-fp8-tensor", True)]:
        out = os.path.join(tmp, f"{backend}-{recipe}.csv")
        args = ["--model", "synthetic:tiny", "--backend", backend, "--recipe", recipe, "--steps", "2",
                "--no-timing", "--csv", out, "--check-weights", "all"] + (["--flush"] if flush else [])
        rc, so, se = forward(*args)
        what = f"{backend} {recipe}{' flush' if flush else ''}"
        t.check(rc == 0, f"{what}: exit 0 (got {rc}): {se[-400:]}")
        if rc != 0:
            continue
        r = rows(out)
        iso = [x for x in r if x["measure"] == "isolated"]
        chained = [x for x in r if x["measure"] == "chained"]
        bad = [(x["step"], x["layer"], x["node"], x["reason"]) for x in iso if x["verdict"] != "pass"]
        t.check(len(iso) > 0 and not bad, f"{what}: every isolated row passes: {bad[:3]}")
        t.check(all(x["verdict"] == "measured" and x["tol_formula"] for x in chained), f"{what}: chained rows measured")
        loads = [x for x in iso if x["node"].endswith("_load")]
        t.check(len(loads) == 7 * 3 + 1, f"{what}: every weight conversion judged ({len(loads)})")
        steps = {x["step"] for x in chained}
        t.check(steps == {"0", "1", "2"}, f"{what}: prompt + 2 decode steps: {sorted(steps)}")
        if recipe == "f32":
            worst = max(float(x["rel_l2"]) for x in chained)
            t.check(worst <= 1e-5, f"{what}: chained rel_l2 {worst:.3g} <= 1e-5")
        else:
            worst = min(float(x["cosine"]) for x in chained)
            logits = [float(x["cosine"]) for x in chained if x["node"] == "lm_head_gemm"]
            t.check(worst >= 0.98 and min(logits) >= 0.99,
                    f"{what}: chained cosine {worst:.4f} >= 0.98, logits {min(logits):.4f} >= 0.99")
        t.check("verdict: no op exceeds its tolerance" in so, f"{what}: verdict printed: {so[-300:]}")

    # planted bugs: each named as the first divergent op at its layer
    plants = [("1:attn_norm=test_eps1e5", "f32", r"attn_norm \(rmsnorm\) at step 0, layer 1 "),
              ("-1:embed=test_wrong_row", "f32", r"embed \(embed\) at step 0, layer -1 "),
              ("2:attn=test_skip_key", "f32", r"attn \(attention\) at step 0, layer 2 "),
              ("1:attn_q_gemm=test_no_bscale", "q4k-fp8-row", r"attn_q_gemm \(gemm_fp8\) at step 0, layer 1 ")]
    if backend == "cpu":
        for plant, recipe, pattern in plants:
            rc, so, se = forward("--model", "synthetic:tiny", "--backend", backend, "--recipe", recipe, "--steps", "1",
                                 "--no-timing", "--plant", plant, env={"KB_TEST_VARIANTS": "1"})
            t.check(rc == 1 and re.search("verdict: " + pattern + "exceeds its tolerance", so) is not None,
                    f"{backend} plant {plant}: named (rc {rc}): {so[-400:]}{se[-300:]}")
    rc, so, se = forward("--model", "synthetic:tiny", "--backend", backend, "--steps", "1", "--no-timing",
                         "--no-isolated", "--repeat", "3")
    t.check(rc == 0 and "logits bit-identical" in so, f"{backend}: --repeat 3 bit-identical: {so[-300:]}{se[-300:]}")

# ---- --prefer-from: a node's variants in the order a kbench CSV timed them ------------------
# The rows of one isolated run at one of tiny's GEMM shapes, their medians rewritten: the
# variant the file has fastest (passing) runs at that shape and only there; a faster row
# that failed counts for nothing; a name the backend does not have is passed over.
def prefer_from_run(backend, times, verdicts=None):
    iso = os.path.join(tmp, "prefer-iso.csv")
    p = subprocess.run([kbench, "--op", "gemm_fp8", "--shape", "256x1x256", "--backend", backend, "--no-timing",
                        "--quiet", "--csv", iso], capture_output=True, text=True, timeout=300)
    r = rows(iso) if p.returncode == 0 else []
    for x in r:
        x["time_med_us"] = str(times.get(x["variant"], 5.0))
        x["verdict"] = (verdicts or {}).get(x["variant"], x["verdict"])
    r += [dict(r[0], variant="no_such_variant", time_med_us="0.5")] if r else []
    table = os.path.join(tmp, "prefer-table.csv")
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(r[0].keys()) if r else ["schema"], lineterminator="\n")
        w.writeheader()
        w.writerows(r)
    out = os.path.join(tmp, "prefer-fwd.csv")
    rc, so, se = forward("--model", "synthetic:tiny", "--backend", backend, "--recipe", "q4k-fp8-tensor", "--steps",
                         "1", "--no-timing", "--no-isolated", "--prefer-from", table, "--csv", out)
    used = {}
    for x in rows(out) if rc == 0 else []:
        if x["op"] == "gemm_fp8":
            used.setdefault(x["shape"], set()).add(x["variant"])
    return rc, used, se


if "vulkan" in backends():
    rc, used, se = prefer_from_run("vulkan", {"gemv_sg": 1.0, "gemv": 3.0})
    t.check(rc == 0 and used.get("256x1x256") == {"gemv_sg"} and all(v == {"gemv"} for k, v in used.items()
                                                                    if k != "256x1x256"),
            f"--prefer-from: gemv_sg, timed fastest at 256x1x256, runs there and only there: {used} {se[-300:]}")
    rc, used, se = prefer_from_run("vulkan", {"gemv_sg": 1.0, "gemv": 3.0}, {"gemv_sg": "fail"})
    t.check(rc == 0 and used.get("256x1x256") == {"gemv"},
            f"--prefer-from: a faster row that failed parity is not chosen: {used} {se[-300:]}")
rc, used, se = prefer_from_run("cpu", {})
t.check(rc == 0 and used and all(len(v) == 1 for v in used.values()),
        f"--prefer-from on cpu: a variant the backend lacks is passed over: {used} {se[-300:]}")
for bad_file, pattern in [(os.path.join(tmp, "missing.csv"), r"--prefer-from: cannot read"),
                          (os.path.join(os.path.dirname(__file__), "test_forward.py"), r"--prefer-from: .* is not a kbench CSV")]:
    rc, so, se = forward("--model", "synthetic:tiny", "--backend", "cpu", "--steps", "0", "--no-timing",
                         "--prefer-from", bad_file)
    lines = [x for x in se.splitlines() if x.strip()]
    t.check(rc == 2 and len(lines) == 1 and re.search(pattern, lines[0]) is not None,
            f"--prefer-from {os.path.basename(bad_file)}: exit 2, one line matching {pattern!r}: {rc} {se!r}")

# ---- GGUF written by gguf's writer ---------------------------------------------------------
from gguf import GGUFReader  # noqa: E402

good = os.path.join(tmp, "tiny.gguf")
write_model(good, eps=1e-5, rope_base=1e4)
rc, so, se = forward("--model", good, "--info")
mine = {}
for line in so.splitlines():
    if line.startswith("tensor "):
        _, name, typ, rows_, _, cols = line.split()
        mine[name] = (typ, int(rows_), int(cols))
theirs = {}
for tt in GGUFReader(good).tensors:
    shape = [int(s) for s in tt.shape]
    theirs[tt.name] = (tt.tensor_type.name.lower(), shape[1] if len(shape) > 1 else 1, shape[0])
t.check(rc == 0 and mine == theirs, f"--info: the C reader sees gguf's tensors: {len(mine)} vs {len(theirs)}")
t.check("rms_eps 9.99999975e-06" in so and "rope_base 10000" in so, f"eps and rope base from the file: {so[:300]}")
out = os.path.join(tmp, "gguf.csv")
rc, so, se = forward("--model", good, "--backend", "cpu", "--recipe", "q4k-fp8-row", "--steps", "1", "--no-timing",
                     "--csv", out)
r = rows(out) if rc == 0 else []
norms = [x for x in r if x["node"] == "attn_norm" and x["measure"] == "isolated"]
ropes = [x for x in r if x["node"] == "attn_q_rope" and x["measure"] == "isolated"]
t.check(rc == 0 and norms and all(x["eps"] == "1e-05" and x["verdict"] == "pass" for x in norms)
        and all(x["theta"] == "10000" for x in ropes), f"forward on the GGUF file: eps/theta from the file ({rc}) {se[-300:]}")


def expect_bad(path, pattern, what):
    rc, so, se = forward("--model", path, "--backend", "cpu", "--steps", "0", "--no-timing")
    lines = [x for x in se.splitlines() if x.strip()]
    t.check(rc == 2 and len(lines) == 1 and re.search(pattern, lines[0]) is not None,
            f"{what}: exit 2 with one line matching {pattern!r}: rc {rc} {se!r}")


def variant(name, **kw):
    p = os.path.join(tmp, name + ".gguf")
    write_model(p, **kw)
    return p


expect_bad(variant("nokey", skip_key="block_count"), r"missing metadata key 'qwen2.block_count'", "missing key")
expect_bad(variant("notensor", skip_tensor="blk.1.ffn_up.weight"), r"missing tensor 'blk.1.ffn_up.weight'",
           "missing tensor")
expect_bad(variant("shape", bad_shape=("blk.0.attn_k.weight", (256, 256))),
           r"tensor 'blk.0.attn_k.weight' is \[256 x 256\], the architecture wants \[256 x 128\]", "wrong shape")
expect_bad(variant("q5k", extra_type=("blk.0.attn_q.weight", 13)),
           r"tensor 'blk.0.attn_q.weight' has type Q5_K, which kbench does not read", "unsupported type")

blob = open(good, "rb").read()


def raw(name, data):
    p = os.path.join(tmp, name + ".gguf")
    open(p, "wb").write(data)
    return p


expect_bad(raw("magic", b"GGML" + blob[4:]), r"not a GGUF file \(bad magic\)", "bad magic")
expect_bad(raw("version", blob[:4] + struct.pack("<I", 9) + blob[8:]), r"GGUF version 9 is not supported",
           "unknown version")
expect_bad(raw("trunc_header", blob[:1500]), r"truncated: ", "truncated header")
expect_bad(raw("short", blob[:200]), r"counts too large for the file", "counts beyond a short file")
expect_bad(raw("trunc_data", blob[:len(blob) - 100]), r"lie past the end of the file", "truncated data")
expect_bad(raw("counts", blob[:8] + struct.pack("<QQ", 1 << 60, 3) + blob[24:]), r"counts too large",
           "absurd tensor count")
# the first metadata entry's value type -> 99 (its key string starts right after the counts)
klen = struct.unpack_from("<Q", blob, 24)[0]
type_at = 24 + 8 + klen
expect_bad(raw("kvtype", blob[:type_at] + struct.pack("<I", 99) + blob[type_at + 4:]), r"unknown value type 99",
           "unknown metadata type")
# a string length past the end
expect_bad(raw("strlen", blob[:24] + struct.pack("<Q", 1 << 62) + blob[32:]), r"claims \d+ bytes", "string length")


def with_tensor_field(name, dims, ggml_type, offset):
    """The file with one tensor info rewritten (n_dims, dims, type, offset)."""
    # the info starts with the name: u64 length + bytes, then u32 n_dims...
    key = struct.pack("<Q", len(name)) + name.encode()
    at = blob.index(key) + len(key)
    n_dims = struct.unpack_from("<I", blob, at)[0]
    old_len = 4 + 8 * n_dims + 4 + 8
    new = struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ggml_type, offset)
    assert len(new) == old_len, (len(new), old_len)
    return blob[:at] + new + blob[at + old_len:]


expect_bad(raw("overflow", with_tensor_field("output_norm.weight", [1 << 62], 0, 0)), r"past the end|overflow",
           "dims that overflow")
expect_bad(raw("offset", with_tensor_field("output_norm.weight", [256], 0, 1 << 40)), r"lie past the end",
           "offset past the end")
expect_bad(raw("align", with_tensor_field("output_norm.weight", [256], 0, 7)), r"not a multiple of the alignment",
           "misaligned offset")
expect_bad(os.path.join(tmp, "no-such.gguf"), r"cannot open", "missing file")
expect_bad(tmp, r"not a regular file", "a directory")

# SIGTERM in the middle of a run: the forward stops at the next step or node (exit 143 =
# 128 + 15, one line saying where), and the CSV holds whole rows only. A signal that
# lands while the reference is still running (a slow machine) stops it there: exit 143
# too, the CSV then holds the header alone.
import signal  # noqa: E402
import time  # noqa: E402

out = os.path.join(tmp, "sigterm.csv")
p = subprocess.Popen([kbench, "forward", "--model", "synthetic:tiny", "--backend", "cpu", "--steps", "60", "--repeat",
                      "3", "--csv", out, "--progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
err = ""
while p.poll() is None and "isolated checks" not in err:  # wait for the backend's first step
    line = p.stderr.readline()
    err += line
    if not line:
        break
time.sleep(0.3)
p.send_signal(signal.SIGTERM)
so, rest = p.communicate(timeout=120)
err += rest
t.check(p.returncode == 143, f"SIGTERM mid-run: exit {p.returncode} (want 143)")
t.check(re.search(r"stopped by signal 15", err) is not None, "SIGTERM mid-run: says it stopped: " + err.strip()[-120:])
with open(out) as f:
    got = list(csv.reader(f))
t.check(len(got) > 1 and len({len(r) for r in got}) == 1, f"SIGTERM mid-run: {len(got) - 1} whole rows")
t.check(len(got) < 1 + 61 * 60, "SIGTERM mid-run: it stopped before the end")

shutil.rmtree(tmp, ignore_errors=True)
t.finish()
