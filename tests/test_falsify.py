"""kbench falsify on synthetic:tiny: every stage gives a verdict on cpu (and vulkan where a
Vulkan device exists); each planted bug is confirmed by the stage that owns it (a wrong
embedding row by C, a wrong eps by D, an ignored GEMM scale by E; B, the per-layer
parity, confirms all three) and refuted by the other single-op stages; the JSON and
markdown reports hold every stage's hypothesis, bound, numbers, verdict and the command.
Usage: test_falsify.py KBENCH"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))
from kbref import Tally  # noqa: E402

kbench = sys.argv[1]
t = Tally()
tmp = tempfile.mkdtemp()


def falsify(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([kbench, "falsify", *args], capture_output=True, text=True, env=e, timeout=900)
    return p.returncode, p.stdout, p.stderr


def verdicts(text):
    m = re.search(r"(A \w+), (B \w+), (C \w+), (D \w+), (E \w+)\.", text)
    return dict(x.split() for x in m.groups()) if m else {}


p = subprocess.run([kbench, "--list-backends"], capture_output=True, text=True, timeout=120)
devices = ["cpu"] + (["vulkan"] if re.search(r"^vulkan\s+available", p.stdout, re.M) else [])
common = ["--model", "synthetic:tiny", "--recipe", "q4k-fp8-row", "--steps", "1", "--no-timing"]

for dev in devices:
    out = os.path.join(tmp, dev)
    rc, so, se = falsify("--stage", "all", "--backend", dev, "--out", out, *common)
    v = verdicts(so)
    t.check(rc == 0 and v == {s: "refuted" for s in "ABCDE"}, f"{dev}: every stage refuted on a correct backend: {v} rc {rc} {se[-300:]}")
    rep = json.load(open(os.path.join(out, "falsify.json")))
    t.check(rep["schema"] == "kbench-falsify-1" and [s["stage"] for s in rep["stages"]] == list("ABCDE"),
            f"{dev}: falsify.json holds the five stages")
    t.check(all(s["hypothesis"] and s["bound"] and s["measured"] and s["verdict"] in ("refuted", "confirmed", "inconclusive")
                and s["why"] for s in rep["stages"]), f"{dev}: every stage has a hypothesis, a bound, numbers, a verdict")
    t.check(rep["command"].startswith("kbench falsify --stage all") and f"--backend {dev}" in rep["command"],
            f"{dev}: the command to reproduce: {rep['command']}")
    md = open(os.path.join(out, "falsify.md")).read()
    t.check(md.count("## Stage ") == 5 and "Reproduce: `kbench falsify" in md, f"{dev}: falsify.md")

# each planted bug confirmed by its stage, refuted by the other single-op stages
plants = [("-1:embed=test_wrong_row", "C"), ("1:attn_norm=test_eps1e5", "D"), ("0:attn_q_gemm=test_no_bscale", "E")]
for plant, owner in plants:
    rc, so, se = falsify("--stage", "all", "--backend", "cpu", "--plant", plant, *common, env={"KB_TEST_VARIANTS": "1"})
    v = verdicts(so)
    want = {s: ("confirmed" if s in (owner, "B") else "refuted") for s in "ABCDE"}
    t.check(rc == 1 and v == want, f"plant {plant}: {v} (want {want}), rc {rc} {se[-300:]}")

# one stage; bad input
rc, so, se = falsify("--stage", "C", "--backend", "cpu", *common)
t.check(rc == 0 and "## Stage C: embedding lookup - **refuted**" in so and "Stage D" not in so, f"--stage C alone: {so[:200]}")
for args, pattern in [(["--stage", "F"], r"--stage 'F' is not A, B, C, D, E or all"), ([], r"--stage .* is required"),
                      (["--stage", "A", "--recipe", "nope"], r"unknown recipe 'nope'")]:
    rc, so, se = falsify(*args)
    t.check(rc == 2 and re.search(pattern, se), f"{args}: exit 2 matching {pattern!r}: {rc} {se!r}")
t.finish()
