"""CLI contract: bad input exits 2 with one clear line; listings work; the CSV
header is exactly the schema in results/README.md; JSON Lines and Google
Benchmark's JSON are valid. Usage: test_cli.py KBENCH SOURCE_DIR"""
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))
from kbref import Tally  # noqa: E402

kbench, src = sys.argv[1], sys.argv[2]
t = Tally()
tmp = tempfile.mkdtemp()


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([kbench, *args], capture_output=True, text=True, env=e, timeout=300)
    return p.returncode, p.stdout, p.stderr


def expect_usage(args, pattern):
    rc, out, err = run(*args)
    lines = [l for l in err.splitlines() if l.strip()]
    ok = rc == 2 and len(lines) == 1 and re.search(pattern, lines[0]) is not None
    t.check(ok, f"{args}: want exit 2 and one line matching {pattern!r}, got rc={rc} stderr={err!r}")


bad_table = os.path.join(tmp, "bad.tsv")
with open(bad_table, "w") as f:
    f.write("op m n k\ngemm_fp8 64 x 256\n")
odd_table = os.path.join(tmp, "odd.tsv")
with open(odd_table, "w") as f:
    f.write("op n heads head_dim\nrope_neox 2 4 7\n")
eps_table = os.path.join(tmp, "eps.tsv")
with open(eps_table, "w") as f:
    f.write("op m n k eps\ngemm_fp8 64 1 256 1e-6\n")
unknown_col_table = os.path.join(tmp, "unk.tsv")
with open(unknown_col_table, "w") as f:
    f.write("op m n k colour\ngemm_fp8 64 1 256 red\n")
cases = [
    (["--op", "gemm"], r"unknown op 'gemm'"),
    (["--op", "gemm_fp8", "--backend", "tpu"], r"unknown backend 'tpu'"),
    (["--op", "gemm_fp8", "--shape", "3584x"], r"malformed shape '3584x'"),
    (["--op", "gemm_fp8", "--shape", "3584x16"], r"malformed shape '3584x16' for gemm_fp8: expected MxNxK"),
    (["--op", "gemm_fp8", "--shape", "12abc"], r"unknown shape table '12abc'"),
    (["--op", "gemm_fp8", "--shape", "0x16x3584"], r"M must be positive \(got 0\)"),
    (["--op", "gemm_fp8", "--shape", "3584x-4x3584"], r"N must be positive \(got -4\)"),
    (["--op", "rope_neox", "--shape", "4x2x7"], r"head_dim must be even \(got 7\)"),
    (["--op", "rmsnorm", "--shape", "4x64", "--eps", "0"], r"--eps must be > 0"),
    (["--op", "rmsnorm", "--shape", "4x64", "--eps", "-1e-6"], r"--eps must be > 0"),
    (["--op", "dequant_q4k", "--shape", "4x100"], r"K=100 is not a multiple of the block \(256\)"),
    (["--op", "quant_fp8", "--shape", "4x64", "--scale", "blk128"], r"activation scales are tensor, outer or vec128"),
    (["--op", "quant_fp8", "--shape", "4x64", "--out-type", "bf16"], r"out_type must be e4m3 or e5m2"),
    (["--op", "weight_fp8", "--shape", "4x64", "--a-type", "f32"], r"the weights are q4_k or q6_k"),
    (["--op", "swiglu", "--shape", "4x64", "--a-type", "e4m3"], r"must be f32, f16 or bf16"),
    (["--op", "embed", "--shape", "4x512x1000x7"], r"expected NxK or NxKxVOCAB"),
    (["--op", "rmsnorm", "--shape", "4x64", "--flush", "2"], r"--flush: '2' is not 0 or 1"),
    (["--op", "rmsnorm", "--shape", "4x64", "--scale", "diagonal"], r"--scale: 'diagonal' is not tensor"),
    (["--op", "rmsnorm", "--shape", "4x64", "--mode", "lukewarm"], r"--mode: 'lukewarm'"),
    (["--op", "gemm_fp8", "--shape", "3000000000x3000000000x3000000000"], r"overflow"),
    (["--op", "attention", "--shape", "1x16x7x2x64"], r"heads \(7\) must be a multiple of kv_heads \(2\)"),
    (["--op", "attention", "--shape", "20x16x4x4x64"], r"queries \(20\) cannot exceed kv_len \(16\)"),
    (["--op", "gemm_fp8", "--shape", "64x1x256", "--out-type", "q4_k"], r"output type must be f32, f16 or bf16"),
    (["--shapes", "/nonexistent/table.tsv"], r"cannot read shape table '/nonexistent/table.tsv'"),
    (["--shapes", bad_table], r"bad.tsv:2: bad n 'x'"),
    (["--shapes", odd_table], r"odd.tsv:2: rope_neox: head_dim must be even"),
    (["--shapes", eps_table], r"eps.tsv:2: gemm_fp8 takes no 'eps'"),
    (["--shapes", unknown_col_table], r"unk.tsv:1: unknown column 'colour'"),
    (["--op", "gemm_fp8", "--shape", "1234"], r"no rows of table 'qwen2.5-7b' match"),
    (["--reps", "two"], r"--reps: 'two'"),
    (["--frobnicate"], r"unknown option '--frobnicate'"),
    (["--op"], r"--op needs a value"),
    (["--algo", "fastest"], r"--algo: 'fastest'"),
    (["--benchmark_colour=yes"], r"unknown Google Benchmark flag"),
    (["--op", "rmsnorm", "--shape", "2x64", "--variant", "nope", "--backend", "cpu", "--no-timing"],
     r"--variant 'nope' matched no variant"),
]
for args, pat in cases:
    expect_usage(args, pat)

# listings
rc, out, _ = run("--list-ops")
ops = ["dequant_q4k", "rmsnorm", "gemm_fp8", "rope_neox", "attention", "embed", "gemm_f32", "add", "bias_add",
       "swiglu", "quant_fp8", "weight_fp8"]
listed = [l.split()[0] for l in out.splitlines() if l.strip()]
t.check(rc == 0 and listed == ops, f"--list-ops lists every op once, in the registry's order: {listed}")
rc, out, _ = run("--list-shapes")
t.check(rc == 0 and "smoke" in out and "qwen2.5-7b" in out, f"--list-shapes: {out!r}")
rc, out, _ = run("--list-backends")
names = [l.split()[0] for l in out.splitlines() if l and not l.startswith(" ")]
t.check(rc == 0 and all(b in names for b in ["cpu", "cuda", "cublaslt", "vulkan"]), f"--list-backends: {out!r}")
for line in out.splitlines():
    if line.startswith(("cuda ", "cublaslt ")) and "unavailable" in line:
        t.check(len(line.split("unavailable", 1)[1].split("[")[0].strip()) > 0, f"unavailable without a reason: {line}")
# sweep axes: a comma list is an axis; the run is the product, applied to the ops that read it
rc, out, _ = run("--op", "gemm_fp8", "--shape", "64x4x256", "--scale", "tensor,outer", "--out-type", "bf16,f32",
                 "--list-axes")
t.check(rc == 0 and out.strip().endswith("4 cases") and "scale=outer" in out and "out_type=f32" in out,
        f"--list-axes: 2 scales x 2 out types = 4 cases: {out!r}")
rc, out, _ = run("--op", "rmsnorm,gemm_fp8", "--shape", "smoke", "--eps", "1e-5,1e-6", "--list-axes")
lines = [l for l in out.splitlines() if l.startswith(("rmsnorm", "gemm_fp8"))]
t.check(rc == 0 and sum(l.startswith("rmsnorm") for l in lines) == 6 and sum(l.startswith("gemm_fp8") for l in lines) == 6,
        f"--eps doubles the rmsnorm rows only: {out!r}")
rc, out, _ = run("--op", "gemm_fp8", "--shape", "3584x1:4096:*2x3584", "--list-axes")
t.check(rc == 0 and out.strip().endswith("13 cases") and "3584x4096x3584" in out, f"--shape range 1..4096 x2: {out!r}")
rc, out, _ = run("--op", "gemm_fp8", "--shape", "64x1,3,5x256", "--scale", "tensor,blk128", "--list-axes")
t.check(rc == 0 and out.strip().endswith("6 cases"), f"--shape list x --scale: {out!r}")
expect_usage(["--op", "gemm_fp8", "--shape", "3584x9:1x3584"], r"malformed range in '9:1'")
expect_usage(["--op", "gemm_fp8", "--shape", "3584x1:9:*1x3584"], r"malformed step in '1:9:\*1'")

# --resume: a run stopped by SIGTERM, resumed, gives the rows of an uninterrupted run
import signal
import time
full, part = os.path.join(tmp, "full.csv"), os.path.join(tmp, "part.csv")
# about 6 s for 39 rows here; the signal goes once two rows are written (a fixed sleep let a
# fast CI machine finish the whole run first), so most rows are still to come
timed = ["--shapes", "smoke", "--backend", "cpu", "--reps", "30", "--max-time", "0.05", "--quiet"]
run(*timed, "--csv", full)
proc = subprocess.Popen([kbench, *timed, "--csv", part], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
deadline = time.monotonic() + 120
while proc.poll() is None and time.monotonic() < deadline:
    if os.path.exists(part) and len(open(part).read().splitlines()) >= 3:
        break
    time.sleep(0.02)
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=120)
partial = len(open(part).read().splitlines())
rc, out, err = run(*timed, "--resume", part)
# what differs between any two runs: the start, the ceiling measured at it, the timings
measured = {"timestamp", "bw_ceiling_gbps", "reps", "time_med_us", "time_min_us", "time_max_us", "cv", "gbps",
            "tflops", "ceiling_frac"}


def rows_without(path):
    with open(path) as f:
        r = list(csv.reader(f))
    keep = [i for i, c in enumerate(r[0]) if c not in measured]
    return [[row[i] for i in keep] for row in r]


t.check(proc.returncode == 128 + signal.SIGTERM and 1 <= partial < len(open(full).read().splitlines()),
        f"SIGTERM stopped the run part-way (rc {proc.returncode}, {partial} lines)")
t.check(rc == 0 and rows_without(part) == rows_without(full),
        f"--resume completes the CSV exactly as an uninterrupted run: rc {rc} {err[-300:]}")
rc, out, err = run(*timed, "--resume", part)
t.check(rc == 0 and rows_without(part) == rows_without(full), "a second --resume adds nothing")
# a file of the previous schema (kbench-row-2: no repeats column) resumes into a new
# --csv; appending this build's rows to it would mix two headers: exit 2
old_csv, rest_csv = os.path.join(tmp, "row2.csv"), os.path.join(tmp, "rest.csv")
with open(part) as f:
    r = list(csv.reader(f))
drop = r[0].index("repeats")
with open(old_csv, "w", newline="") as f:
    w = csv.writer(f)
    for i, row in enumerate(r[: len(r) // 2]):
        row = row[:drop] + row[drop + 1:]
        w.writerow(row if i == 0 else ["kbench-row-2"] + row[1:])
rc, out, err = run(*timed, "--resume", old_csv, "--csv", rest_csv)
t.check(rc == 0 and 1 < len(open(rest_csv).read().splitlines()) < len(r),
        f"--resume reads a kbench-row-2 file and writes the rest elsewhere: rc {rc} {err[-300:]}")
expect_usage([*timed, "--resume", old_csv], r"holds kbench-row-2 rows, this kbench writes kbench-row-3")
bad_csv = os.path.join(tmp, "notkb.csv")
with open(bad_csv, "w") as f:
    f.write("a,b\n1,2\n")
expect_usage(["--shapes", "smoke", "--resume", bad_csv], r"is not a kbench CSV")

rc, out, _ = run("--help")
t.check(rc == 0 and "Exit codes" in out and "--list-backends" in out, "--help")

# schema: the CSV header equals the column table documented in results/README.md
doc = open(os.path.join(src, "results", "README.md")).read()
documented = re.findall(r"^\| `([a-z0-9_]+)` \|", doc, re.M)
csv_path, json_path, gb_path = (os.path.join(tmp, n) for n in ("r.csv", "r.jsonl", "gb.json"))
rc, out, err = run("--op", "rmsnorm,gemm_fp8", "--shape", "smoke", "--backend", "cpu,cuda", "--reps", "3",
                   "--max-time", "0.05", "--csv", csv_path, "--json", json_path,
                   f"--benchmark_out={gb_path}", "--benchmark_out_format=json")
t.check(rc == 0, f"smoke rmsnorm+gemm on cpu,cuda exits 0, got {rc}: {err[-500:]}")
with open(csv_path) as f:
    rows = list(csv.reader(f))
header = rows[0]
t.check(header == documented, f"CSV header != results/README.md schema:\n{header}\n{documented}")
body = [dict(zip(header, r)) for r in rows[1:]]
t.check(all(len(r) == len(header) for r in rows), "every CSV row has every column")
cpu_rows = [r for r in body if r["backend"] == "cpu"]
t.check(len(cpu_rows) == 9 and all(r["verdict"] == "pass" for r in cpu_rows), "9 cpu rows, all pass")
t.check(all(r["schema"] == "kbench-row-3" and r["seed"] == "1" and r["tol_formula"] for r in cpu_rows),
        "schema, seed and tolerance in every row")
t.check(all(float(r["time_med_us"]) > 0 and int(r["reps"]) >= 3 and r["mode"] == "cold" for r in cpu_rows),
        "timed rows have median, reps and mode")
cuda_rows = [r for r in body if r["backend"] == "cuda"]
t.check(all(r["verdict"] in ("skipped", "pass", "fail", "not_supported", "error") for r in cuda_rows), "cuda verdicts")
if cuda_rows and cuda_rows[0]["verdict"] == "skipped":
    t.check(all(r["verdict"] == "skipped" and "unavailable" in r["reason"] for r in cuda_rows),
            "without a GPU every cuda row is skipped with the reason, never pass")
with open(json_path) as f:
    jl = [json.loads(l) for l in f]
t.check(len(jl) == len(body) and list(jl[0].keys()) == documented, "JSON Lines: one object per row, same columns")
t.check(all(isinstance(j["max_abs"], float) or j["max_abs"] is None for j in jl), "JSON numbers are numbers")
gb = json.load(open(gb_path))
gb_names = {b["name"] for b in gb["benchmarks"]}
t.check(len(gb_names) == len(cpu_rows) and all(n.startswith(("rmsnorm/", "gemm_fp8/")) for n in gb_names),
        f"Google Benchmark JSON names every timed row: {sorted(gb_names)[:3]}")
t.check(all(b["time_unit"] == "us" and b["real_time"] > 0 for b in gb["benchmarks"]), "Google Benchmark times")

# an interrupted run keeps the rows that finished: rows are flushed as written
rc, out, err = run("--op", "rmsnorm", "--shape", "2x64", "--backend", "cpu", "--no-timing", "--csv", csv_path)
lines = open(csv_path).read().splitlines()
t.check(rc == 0 and len(lines) == 2, "parity-only run writes header + 1 row")

# tools/compare.py: the same CSV matches itself; a pass turned fail is a regression
compare = os.path.join(src, "tools", "compare.py")
rc, out, err = run("--op", "rmsnorm,gemm_fp8", "--shape", "smoke", "--backend", "cpu", "--reps", "3",
                   "--max-time", "0.05", "--csv", csv_path, "--quiet")
p = subprocess.run([sys.executable, compare, csv_path, csv_path], capture_output=True, text=True)
t.check(p.returncode == 0 and "9 rows matched" in p.stdout, f"compare.py same file: {p.stdout[-300:]}{p.stderr}")
with open(csv_path) as f:
    rows = list(csv.DictReader(f))
rows[0]["verdict"] = "fail"
worse = os.path.join(tmp, "worse.csv")
with open(worse, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
p = subprocess.run([sys.executable, compare, csv_path, worse], capture_output=True, text=True)
t.check(p.returncode == 1 and "verdict pass -> fail" in p.stdout, f"compare.py flags pass -> fail: {p.stdout[-300:]}")
t.finish()
