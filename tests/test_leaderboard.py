"""tools/leaderboard.py: a fast failing row never ranks; ranks follow the median time
among passing rows; kbench-row-1, kbench-row-2 CSV and JSON Lines all load; the CSV
header is the schema docs/LEADERBOARD.md documents; the markdown renders; the plots
are real PNGs; a slowdown beyond noise and a changed verdict are flagged, a slowdown
within noise is not; compare.py reads both schemas. With KBENCH, the same on the
rows of a real cpu run with kbench's test-only broken variants.
Usage: test_leaderboard.py SOURCE_DIR [KBENCH]"""
import csv
import gzip
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict

src = sys.argv[1]
kbench = sys.argv[2] if len(sys.argv) > 2 else None
sys.path.insert(0, os.path.join(src, "tests", "oracle"))
sys.path.insert(0, os.path.join(src, "tools"))
from kbref import Tally  # noqa: E402
import leaderboard as lb  # noqa: E402

t = Tally()
tmp = tempfile.mkdtemp()
fx = os.path.join(src, "tests", "fixtures")
BOARD, FORWARD, ROW1 = (os.path.join(fx, n) for n in ("board.csv", "forward.jsonl", "row1-h100.csv"))
TOOL, COMPARE = os.path.join(src, "tools", "leaderboard.py"), os.path.join(src, "tools", "compare.py")


def tool(*args, script=TOOL):
    """Run a tool script: (exit status, stdout, stderr)."""
    p = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def read_csv(path):
    """A CSV as a list of dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    """Rows (dicts with the same keys) as a CSV."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def find(rows, what, pred):
    """The first row that pred accepts; else a failed check and a row of empty cells,
    so that one missing row fails its checks instead of stopping the test."""
    hit = next((r for r in rows if pred(r)), None)
    t.check(hit is not None, f"no row: {what}")
    return hit if hit is not None else defaultdict(str)


def group_of(r):
    """The leaderboard group of a board row or of a raw result row (device without its
    parenthetical, as the tool documents)."""
    dev = r["device"].split(" (", 1)[0]
    return (dev, r["op"], r["shape"]) + tuple(r.get(p, "") for p in lb.CASE_PARAMS) + (r["mode"],)


def ranking_problems(board, raw):
    """Everything wrong with a leaderboard's ranking, checked from the raw rows, not from
    the tool's own code: per group the ranked rows are exactly the passing timed rows,
    ranks run 1..n in order of median time, and nothing that did not pass has a rank."""
    problems = []
    groups = {}
    for e in board:
        groups.setdefault(group_of(e), []).append(e)
    for g, es in groups.items():
        ranked = sorted((e for e in es if e["rank"] != "-"), key=lambda e: int(e["rank"]))
        if [int(e["rank"]) for e in ranked] != list(range(1, len(ranked) + 1)):
            problems.append(f"{g[:3]}: ranks {[e['rank'] for e in ranked]} are not 1..n")
        times = [float(e["time_med_us"]) for e in ranked]
        if times != sorted(times):
            problems.append(f"{g[:3]}: ranked times {times} are not increasing")
        for e in es:
            if e["rank"] != "-" and e["verdict"] != "pass":
                problems.append(f"{g[:3]}: {e['variant']} ranks {e['rank']} with verdict {e['verdict']}")
            if e["rank"] == "-" and e["disposition"] == "ranked":
                problems.append(f"{g[:3]}: {e['variant']} is 'ranked' without a rank")
        want = {(r["backend"], r["variant"]) for r in raw
                if group_of(r) == g and r["verdict"] == "pass" and r["time_med_us"]}
        got = {(e["backend"], e["variant"]) for e in ranked}
        if want != got:
            problems.append(f"{g[:3]}: ranked {sorted(got)}, the passing timed rows are {sorted(want)}")
    return problems


# ---- loading: row-1, row-2 CSV, JSON Lines --------------------------------------------
row1 = lb.load_rows(ROW1)
t.check(len(row1) == 13 and all(r["schema"] == "kbench-row-1" for r in row1), f"row-1 fixture: {len(row1)} rows")
rms1 = find(row1, "row-1 rmsnorm", lambda r: r["op"] == "rmsnorm")
t.check(rms1["m"] == "" and rms1["n"] == "4" and rms1["layer"] == "" and rms1["flush"] == "",
        f"row-1: unused sizes (printed 0) and the row-2 columns are empty: m={rms1['m']!r} flush={rms1['flush']!r}")
board_raw = lb.load_rows(BOARD)
t.check(len(board_raw) == 36 and all(r["schema"] == "kbench-row-2" for r in board_raw), "row-2 CSV fixture loads")
fwd = lb.load_rows(FORWARD)
t.check(len(fwd) == 51 and sum(lb.is_forward(r) for r in fwd) == 48, f"JSON Lines fixture loads: {len(fwd)}")
y2 = find(fwd, "Fixture GPU Y2", lambda r: r["device"].startswith("Fixture GPU Y2"))
t.check(y2["eps"] == "1e-06" and y2["n"] == "4" and y2["max_pos"] == "" and y2["time_med_us"] == "3.1",
        f"JSON numbers read as the CSV writes them (%.6g), null as empty: {y2['eps']!r} {y2['n']!r}")
bad = os.path.join(tmp, "bad.csv")
with open(bad, "w") as f:
    f.write("schema,op\nkbench-row-9,rmsnorm\n")
rc, out, err = tool(bad)
t.check(rc == 2 and err.strip().splitlines() == [f"leaderboard.py: {bad}:2: schema 'kbench-row-9' is not one of "
                                                  "kbench-row-1, kbench-row-2, kbench-row-3"], f"unknown schema: rc={rc} {err!r}")
rc, out, err = tool(os.path.join(tmp, "missing.csv"))
t.check(rc == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1, f"missing file: {err!r}")

# ---- the leaderboard of the fixtures --------------------------------------------------
out_csv, out_md = os.path.join(tmp, "board.csv"), os.path.join(tmp, "board.md")
rc, out, err = tool(BOARD, FORWARD, ROW1, "--csv", out_csv, "--md", out_md, "--top", "0")
t.check(rc == 0, f"leaderboard of the fixtures exits 0: {rc} {err[-400:]}")
board = read_csv(out_csv)
doc = open(os.path.join(src, "docs", "LEADERBOARD.md")).read()
documented = re.findall(r"^\| `([a-z0-9_]+)` \|", doc, re.M)
with open(out_csv, newline="") as f:
    header = next(csv.reader(f))
t.check(header == documented == list(lb.BOARD_COLUMNS),
        f"leaderboard CSV header == docs/LEADERBOARD.md's column table:\n{header}\n{documented}")
t.check(all(e["schema"] == "kbench-leaderboard-1" for e in board), "schema column")
raw = [r for r in board_raw + fwd + row1 if not lb.is_forward(r)]
problems = ranking_problems(board, raw)
t.check(not problems, "ranking of the fixtures: " + "; ".join(problems))

n16 = [e for e in board if e["shape"] == "512x16x1024" and e["mode"] == "cold" and e["device"] == "Fixture GPU X1"]
bad_fast = find(n16, "gemv_bad_fast", lambda e: e["variant"] == "gemv_bad_fast")
fastest = min((float(e["time_med_us"]) for e in n16 if e["time_med_us"]), default=None)
t.check(fastest is not None and lb.num(bad_fast["time_med_us"]) == fastest,
        "the fixture's failing row is the fastest of its group")
t.check(bad_fast["rank"] == "-" and bad_fast["disposition"] == "fail" and (lb.num(bad_fast["vs_best"]) or 9) < 1,
        f"the fast failing row is listed apart, never ranked: rank {bad_fast['rank']} {bad_fast['disposition']}")
first = find(n16, "rank 1 at N = 16", lambda e: e["rank"] == "1")
t.check(first["verdict"] == "pass" and first["backend"] == "cuda" and first["variant"] == "gemv_v1",
        f"rank 1 is the fastest passing row: {first['backend']} {first['variant']}")
t.check([e["variant"] for e in sorted((e for e in n16 if e["rank"] != "-"), key=lambda e: int(e["rank"]))]
        == ["gemv_v1", "h00_fa0", "gemm_v1"], "ranks 1, 2, 3 by median time across cuda, cuBLASLt and Vulkan")
err_row = find(n16, "gemv_v3", lambda e: e["variant"] == "gemv_v3")
t.check(err_row["disposition"] == "error" and "ILLEGAL_ADDRESS" in err_row["reason"],
        "the errored row, with its reason")
t.check(all(e["group_not_supported"] == "1" and e["group_fail"] == "1" and e["group_pass"] == "3" for e in n16),
        "the group counts its not_supported, failing and passing rows")
t.check(not any(e["verdict"] in ("not_supported", "skipped") for e in board),
        "not_supported/skipped: counted, not listed")
hot = [e for e in board if e["shape"] == "512x16x1024" and e["mode"] == "hot"]
t.check([e["variant"] for e in hot if e["rank"] != "-"] == ["gemv_v1", "h00_fa0"], "hot rows rank in their own group")
h100 = [e for e in board if e["device"] == "NVIDIA H100 80GB HBM3"]
t.check({e["backend"] for e in h100} == {"cuda", "cublaslt", "vulkan"},
        "cuda, cuBLASLt and Vulkan on one GPU share a device (the backend's parenthetical dropped)")
bw = {e["backend"]: float(e["bw_ceiling_gbps"]) for e in h100 if e["bw_ceiling_gbps"]}
peak = {float(e["flop_ceiling_tflops"]) for e in h100 if e["flop_ceiling_tflops"]}
t.check(2800 < bw.get("cuda", 0) < 3100 and peak and all(abs(p - 1979) < 1 for p in peak),
        f"row-1 ceilings recovered from ceiling_frac: {bw}, {peak} (3.0 TB/s, 1979 TFLOP/s)")
t.check(any(e["device"] == "Fixture GPU Y2" and e["rank"] == "1" for e in board), "the JSON Lines device ranks too")

md = open(out_md).read()
ranked_part, _, apart_part = md.partition("failed or errored (never ranked)")
t.check(md.startswith("# kbench leaderboard (kbench-leaderboard-1)") and "## Fixture GPU X1" in md
        and "## NVIDIA H100 80GB HBM3" in md and "| op | shape |" in md, "markdown: title, device sections, tables")
t.check("gemv_bad_fast" not in ranked_part and "gemv_bad_fast" in apart_part and "ILLEGAL_ADDRESS" in apart_part,
        "markdown: the failing and errored rows only in the 'never ranked' table")
t.check(all(len(l.split(" | ")) == len(lines[0].split(" | ")) for lines in
            [[l for l in block.splitlines() if l.startswith("| ")] for block in md.split("\n\n")] if lines
            for l in lines), "markdown: every table row has its header's cell count")

# the ranking check itself can fail: a swapped pair and a failing row given rank 1
swapped = [dict(e) for e in board]
for e in swapped:
    if e in n16 and e["rank"] in ("1", "2"):
        e["rank"] = "2" if e["rank"] == "1" else "1"
t.check(ranking_problems(swapped, raw), "the ranking check catches two swapped ranks")
cheat = [dict(e) for e in board]
for e in cheat:
    if e["variant"] == "gemv_bad_fast":
        e["rank"], e["disposition"] = "1", "ranked"
    elif e in n16 and e["rank"] != "-":
        e["rank"] = str(int(e["rank"]) + 1)
t.check(ranking_problems(cheat, raw), "the ranking check catches a fast failing row ranked first")
orig_rank_group = lb.rank_group
lb.rank_group = lambda members, mode, row1: orig_rank_group(  # a tool that forgets the verdict
    [dict(r, verdict="pass") if r["verdict"] == "fail" else r for r in members], mode, row1)
broken = lb.build_board(lb.load_rows(BOARD))
lb.rank_group = orig_rank_group
broken_csv = os.path.join(tmp, "broken.csv")
lb.write_csv(broken, broken_csv)
t.check(ranking_problems(read_csv(broken_csv), lb.load_rows(BOARD)),
        "the ranking check catches a tool that ranks a failing row")

# ---- plots ------------------------------------------------------------------------------
import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402

plots = os.path.join(tmp, "plots")
rc, out, err = tool(BOARD, FORWARD, ROW1, "--plots", plots)
want = ["roofline-fixture-gpu-x1.png", "gemm-n-fixture-gpu-x1.png", "error-gemm_fp8-scale-mode-fixture-gpu-x1.png",
        "drift-fixture-gpu-x1-step0.png", "roofline-nvidia-h100-80gb-hbm3.png"]
t.check(rc == 0 and all(os.path.exists(os.path.join(plots, w)) for w in want),
        f"plots written: {sorted(os.listdir(plots)) if os.path.isdir(plots) else err[-300:]}")
for name in sorted(os.listdir(plots)) if os.path.isdir(plots) else []:
    path = os.path.join(plots, name)
    with open(path, "rb") as f:
        magic = f.read(8)
    img = matplotlib.image.imread(path)
    colours = len(np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    t.check(magic == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 10_000 and img.shape[0] > 400
            and img.shape[1] > 600 and colours > 50,
            f"{name}: a real PNG ({os.path.getsize(path)} bytes, {img.shape}, {colours} colours)")
rc, out, err = tool(BOARD, "--plots", plots, "--plot", "histogram")
t.check(rc == 2 and "--plot: unknown kind 'histogram'" in err, f"unknown plot kind: {err!r}")

# ---- against a baseline -------------------------------------------------------------------
base_rows = read_csv(BOARD)
new_rows = [dict(r, timestamp="2026-11-30T10:00:00Z", git_commit="f1x7e5000003") for r in base_rows]


def pick(shape, variant, mode="cold", scale="tensor"):
    """The row of the new result set to change."""
    return next(r for r in new_rows if r["shape"] == shape and r["variant"] == variant and r["mode"] == mode
                and r["scale_mode"] == scale)


def slow(r, factor, cv):
    """Make a row's times factor x longer, with this cv."""
    for c in ("time_med_us", "time_min_us", "time_max_us"):
        r[c] = "%.6g" % (float(r[c]) * factor)
    r["cv"] = "%.6g" % cv


slow(pick("512x64x1024", "gemv_v1"), 1.30, 0.01)  # beyond noise: 30% against max(3*0.014, 5%)
slow(pick("512x256x1024", "gemv_v1"), 1.04, 0.001)  # within the 5% floor (3*hypot(0.01, 0.001) = 3%)
slow(pick("512x1024x1024", "gemv_v1"), 1.30, 0.20)  # 30% within noise: 3*hypot(0.01, 0.2) = 60%
slow(pick("512x4x1024", "h00_fa0"), 0.60, 0.01)  # faster
pick("512x1x1024", "gemm_v1").update(verdict="fail", reason="fixture: broke")
pick("64x16x512", "h00_fa0", scale="blk128").update(verdict="pass", reason="")
new_csv = os.path.join(tmp, "new.csv")
write_csv(new_csv, new_rows)
cmp_csv, cmp_md = os.path.join(tmp, "cmp.csv"), os.path.join(tmp, "cmp.md")
rc, out, err = tool("--baseline", BOARD, new_csv, "--csv", cmp_csv, "--md", cmp_md)
t.check(rc == 1 and "2 regression(s)" in err, f"--baseline: exit 1 on regressions: rc={rc} {err[-300:]}")
cmp = read_csv(cmp_csv)


def change(shape, variant, mode="cold", scale="tensor"):
    """(change, regression) of one row of the comparison."""
    e = find(cmp, f"{shape} {variant}", lambda e: e["shape"] == shape and e["variant"] == variant
             and e["mode"] == mode and e["scale_mode"] == scale)
    return e["change"], e["regression"]


t.check(change("512x64x1024", "gemv_v1") == ("slower", "1"), f"30% slower, cv 1%: {change('512x64x1024', 'gemv_v1')}")
t.check(change("512x256x1024", "gemv_v1") == ("", ""),
        f"4% slower: within the floor: {change('512x256x1024', 'gemv_v1')}")
t.check(change("512x1024x1024", "gemv_v1") == ("", ""),
        f"30% slower with cv 0.2: within noise: {change('512x1024x1024', 'gemv_v1')}")
t.check(change("512x4x1024", "h00_fa0") == ("faster", ""), f"faster: {change('512x4x1024', 'h00_fa0')}")
t.check(change("512x1x1024", "gemm_v1") == ("verdict pass -> fail", "1"), "pass -> fail flagged, a regression")
t.check(change("64x16x512", "h00_fa0", scale="blk128") == ("verdict fail -> pass", ""), "fail -> pass flagged")
t.check(sum(e["change"] != "" for e in cmp) == 4 and all(e["base_verdict"] for e in cmp),
        f"nothing else flagged; every row matched: "
        f"{[(e['shape'], e['variant'], e['change']) for e in cmp if e['change']]}")
slowed = find(cmp, "the slowed row", lambda e: e["shape"] == "512x64x1024" and e["variant"] == "gemv_v1"
              and e["mode"] == "cold")
t.check(abs((lb.num(slowed["time_ratio"]) or 0) - 1.3) < 1e-3
        and abs((lb.num(slowed["noise_threshold"]) or 0) - 0.05) < 1e-9
        and slowed["base_git_commit"] == "f1x7e5000001" and slowed["git_commit"] == "f1x7e5000003",
        f"ratio, threshold and both commits: {slowed['time_ratio']} {slowed['noise_threshold']}")
md = open(cmp_md).read()
t.check("## Against the baseline" in md and "**2 regression(s)**" in md and "verdict pass -> fail" in md,
        "markdown: the changes against the baseline")
rc, out, err = tool("--baseline", BOARD, BOARD, "--csv", cmp_csv)
t.check(rc == 0 and not any(e["change"] for e in read_csv(cmp_csv)), "a result set against itself: no change, exit 0")
rc, out, err = tool("--baseline", ROW1, BOARD, ROW1, "--csv", cmp_csv)
t.check(rc == 0 and all(e["change"] in ("", "new") for e in read_csv(cmp_csv)),
        "row-1 baseline: its rows match themselves, the others are new")
newest = lb.build_board(lb.load_rows(BOARD) + lb.load_rows(new_csv))
t.check(all(e["_row"]["git_commit"] == "f1x7e5000003" for e in newest),
        "two commits in one board: the newest row counts")

# ---- a gzip-compressed result file (a large sweep is committed so) reads as the plain one ----
gz = os.path.join(tmp, "board.csv.gz")
with open(BOARD, "rb") as f, gzip.open(gz, "wb") as g:
    g.write(f.read())
plain_out, gz_out = os.path.join(tmp, "plain-board.csv"), os.path.join(tmp, "gz-board.csv")
rc1, _, err1 = tool(BOARD, "--csv", plain_out)
rc2, _, err2 = tool(gz, "--csv", gz_out)
def but_source(rows):
    return [{k: v for k, v in r.items() if k != "source_file"} for r in rows]


t.check(rc1 == rc2 == 0 and but_source(read_csv(plain_out)) == but_source(read_csv(gz_out)) and read_csv(gz_out),
        f"a .csv.gz gives the board of the .csv: {err1[-200:]} {err2[-200:]}")
with open(os.path.join(tmp, "bad.csv.gz"), "wb") as f:
    f.write(b"not gzip")
rc, out, err = tool(os.path.join(tmp, "bad.csv.gz"), "--csv", gz_out)
t.check(rc == 2 and "cannot read" in err and "Traceback" not in err, f"a corrupt .gz is one line and exit 2: {rc} {err[-300:]}")

# ---- compare.py: both schemas, its lines unchanged ---------------------------------------
rc, out, err = tool(BOARD, new_csv, script=COMPARE)
t.check(rc == 1 and "verdict pass -> fail" in out and re.search(r"^36 rows matched, 0 only in base, 0 only in new, "
                                                                 r"1 pass -> not pass$", out, re.M),
        f"compare.py on row-2: {out[-300:]}{err}")
rc, out, err = tool(ROW1, ROW1, script=COMPARE)
t.check(rc == 0 and "13 rows matched" in out, f"compare.py on row-1: {out[-200:]}{err}")

# ---- the rows of a real run ---------------------------------------------------------------
if kbench:
    real = os.path.join(tmp, "real.csv")
    p = subprocess.run([kbench, "--op", "rmsnorm,gemm_fp8", "--shape", "smoke", "--backend", "cpu", "--reps", "3",
                        "--max-time", "0.02", "--quiet", "--csv", real], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, KB_TEST_VARIANTS="1"))
    rows = read_csv(real)
    fails = [r for r in rows if r["verdict"] == "fail" and r["time_med_us"]]
    t.check(p.returncode == 1 and fails,
            f"kbench with its broken test variants: rc={p.returncode}, {len(fails)} timed failures")
    rc, out, err = tool(real, "--csv", out_csv)
    board = read_csv(out_csv)
    problems = ranking_problems(board, rows)
    t.check(rc == 0 and board and not problems, f"leaderboard of a real run: rc={rc} {err[-200:]} {problems}")
    listed_apart = [e for e in board if e["verdict"] == "fail"]
    t.check(len(listed_apart) == len(fails) and all(e["rank"] == "-" for e in listed_apart)
            and all(e["verdict"] == "pass" for e in board if e["rank"] == "1"),
            f"real run: all {len(fails)} failing rows listed apart, every rank 1 passed")
t.finish()
