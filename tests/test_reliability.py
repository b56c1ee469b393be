"""kbench under interruptions, faults and impossible sizes.

    test_reliability.py KBENCH TEST [args]

  signals            SIGINT and SIGTERM in the middle of a run (cpu backend, smoke
                     table, timing on), during the fp64 reference and during timing:
                     exit 128 + N, and the CSV and JSON Lines files hold every finished
                     row, as complete lines that parse, and nothing else.
  determinism B      five runs of the smoke table on backend B: the same rows with the
                     same output hash each time (exit 77 when B is not available).
  sizes              cases that cannot fit (a GEMM of 10^11 rows, an rmsnorm of 7*10^12
                     elements, attention shapes whose sizes overflow 64 bits, numbers
                     past int64) exit 2 with one line on stderr naming the problem and
                     nothing on stdout, at once; in a shape table the same rows are
                     not_supported rows and the run goes on.
  cuda_fault         (GPU) the test-only variant test_fault (an illegal address) is an
                     error row and every row after it passes.
  cuda_hang          (GPU) test_hang (a kernel that never ends) is an error row after
                     KB_CUDA_TIMEOUT_S, and every row after it passes.
  cuda_worker_kill   (GPU) SIGKILL of the cuda worker process mid-run costs at most the
                     row in flight; the rows after it pass and no case is lost.
The cuda tests exit 77 (CTest: skipped, with the reason) when `kbench --list-backends`
says cuda is unavailable. Prints "N passed, M failed"."""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

KBENCH = os.path.abspath(sys.argv[1])
passed = failed = 0
SKIP = 77
TMP = tempfile.mkdtemp(prefix="kb_reliability_")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def finish():
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


def skip(why):
    print(f"SKIP - {why}")
    sys.exit(SKIP)


def run(args, env=None, timeout=600):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([KBENCH] + args, capture_output=True, text=True, env=e, timeout=timeout)


def backend_available(name):
    out = run(["--list-backends"]).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] == name:
            return f[1] == "available", line.strip()
    return False, f"{name} is not in kbench --list-backends (not built)"


def no_sanitizer_report(text, what):
    marks = [m for m in SANITIZER_MARKS if m in text]
    return check(not marks, f"{what}: sanitizer report on stderr: {marks}\n{text[-2000:]}")


def read_rows(csv_path, json_path, what):
    """Every line of both files complete and parseable; the rows (dicts) from each."""
    with open(csv_path, "rb") as f:
        raw_csv = f.read()
    with open(json_path, "rb") as f:
        raw_json = f.read()
    check(raw_csv.endswith(b"\n"), f"{what}: the CSV ends with a complete line")
    check(raw_json == b"" or raw_json.endswith(b"\n"), f"{what}: the JSON Lines file ends with a complete line")
    table = list(csv.reader(io.StringIO(raw_csv.decode())))
    header, body = table[0], table[1:]
    check(len(header) > 10 and header[0] == "schema", f"{what}: the CSV starts with its header ({header[:3]})")
    check(all(len(r) == len(header) for r in body), f"{what}: every CSV row has the header's {len(header)} fields")
    csv_rows = [dict(zip(header, r)) for r in body]
    json_rows = []
    for i, line in enumerate(raw_json.decode().splitlines()):
        try:
            json_rows.append(json.loads(line))
        except ValueError as e:
            check(False, f"{what}: JSON Lines line {i + 1} does not parse ({e}): {line[:120]!r}")
    check(all(list(r.keys()) == header for r in json_rows), f"{what}: every JSON row has the CSV's columns")
    check(len(csv_rows) == len(json_rows), f"{what}: {len(csv_rows)} CSV rows, {len(json_rows)} JSON rows")
    same = all(c["op"] == j["op"] and c["shape"] == j["shape"] and c["variant"] == j["variant"] and
               c["verdict"] == j["verdict"] and c["hash"] == (j["hash"] or "")
               for c, j in zip(csv_rows, json_rows))
    check(same, f"{what}: the CSV and JSON rows are the same rows in the same order")
    return csv_rows, json_rows


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------ signals
SMOKE_TIMED = ["--shapes", "smoke", "--backend", "cpu", "--reps", "3", "--max-time", "0.05", "--warmup", "1"]


def signal_run(sig, when, full_rows):
    """when: ("reference", n) signals right after the n-th case starts generating its
    inputs and reference (its progress line on stderr); ("timing", n) signals 20 ms
    after the n-th row reached the CSV (the next row is being timed)."""
    what = f"{signal.Signals(sig).name} during {when[0]} (case {when[1]})"
    csv_path, json_path = os.path.join(TMP, "sig.csv"), os.path.join(TMP, "sig.jsonl")
    for path in (csv_path, json_path):
        if os.path.exists(path):
            os.remove(path)
    p = subprocess.Popen([KBENCH] + SMOKE_TIMED + ["--csv", csv_path, "--json", json_path, "--quiet", "--progress"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err_lines = []
    reference_started = threading.Event()

    def drain():  # keeps the pipe empty and watches for the n-th case's progress line
        for line in p.stderr:
            err_lines.append(line)
            if f"[{when[1]}/" in line and "generating inputs" in line:
                reference_started.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    rows_before, sent = 0, False
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if when[0] == "reference" and reference_started.is_set():
            break
        if when[0] == "timing" and count_lines(csv_path) - 1 >= when[1]:
            time.sleep(0.02)
            break
        time.sleep(0.002)
    if p.poll() is None:
        rows_before = max(count_lines(csv_path) - 1, 0)
        p.send_signal(sig)
        sent = True
    rc = p.wait(timeout=300)
    reader.join(timeout=60)
    stderr = "".join(err_lines)
    check(sent, f"{what}: the run reached the point to signal")
    check(rc == 128 + sig, f"{what}: exit code {rc}, want {128 + sig}")
    no_sanitizer_report(stderr, what)
    rows, _ = read_rows(csv_path, json_path, what)
    check(len(rows) >= rows_before, f"{what}: {len(rows)} rows kept, {rows_before} were written before the signal")
    check(len(rows) < full_rows, f"{what}: stopped early ({len(rows)} of {full_rows} rows)")
    check(all(r["verdict"] == "pass" for r in rows), f"{what}: every finished row is a whole, passing result")
    return len(rows)


def test_signals():
    full = run(["--shapes", "smoke", "--backend", "cpu", "--no-timing", "--quiet",
                "--json", os.path.join(TMP, "full.jsonl")])
    check(full.returncode == 0, f"clean cpu smoke run exits 0 (got {full.returncode}: {full.stderr[-500:]})")
    full_rows = count_lines(os.path.join(TMP, "full.jsonl"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        for when in (("reference", 3), ("timing", 2), ("timing", 5)):
            signal_run(sig, when, full_rows)


# ------------------------------------------------------------------ determinism
def row_key(r):
    return tuple(r[k] for k in ("op", "shape", "m", "n", "k", "heads", "kv_heads", "head_dim", "kv_len", "eps",
                                "theta", "max_pos", "a_type", "b_type", "out_type", "scale_mode", "flush", "seed",
                                "backend", "variant"))


def test_determinism(backend):
    ok, line = backend_available(backend)
    if not ok:
        skip(f"{backend} backend not available here: {line}")
    runs = []
    for i in range(5):
        path = os.path.join(TMP, f"det{i}.jsonl")
        r = run(["--shapes", "smoke", "--backend", backend, "--no-timing", "--quiet", "--json", path])
        check(r.returncode in (0, 3), f"{backend} smoke run {i + 1}: exit {r.returncode} ({r.stderr[-300:]})")
        no_sanitizer_report(r.stderr, f"{backend} smoke run {i + 1}")
        with open(path) as f:
            runs.append({row_key(row): row for row in map(json.loads, f)})
    first = runs[0]
    hashed = [k for k, row in first.items() if row["hash"]]
    check(len(hashed) >= 30, f"{backend}: {len(hashed)} rows with an output hash (want the whole smoke table)")
    for i, other in enumerate(runs[1:], 2):
        check(other.keys() == first.keys(), f"{backend}: run {i} has the same rows as run 1")
        diff = [k for k in hashed if k in other and other[k]["hash"] != first[k]["hash"]]
        check(not diff, f"{backend}: run {i}: {len(diff)} rows with another output hash than run 1, e.g. "
              + "; ".join(f"{k[0]} {k[1]} {k[-1]}: {first[k]['hash']} vs {other[k]['hash']}" for k in diff[:3]))


# ------------------------------------------------------------------ sizes
def test_sizes():
    impossible = [
        (["--op", "gemm_fp8", "--shape", "100000000000x1x3584"], "100000000000x1x3584", "memory"),
        (["--op", "rmsnorm", "--shape", "2000000000x3584"], "2000000000x3584", "memory"),
        (["--op", "attention", "--shape", "4294967296x4294967296x65536x1x65536"], "4294967296x4294967296x65536x1x65536",
         "overflow"),
        (["--op", "attention", "--shape", "3037000500x3037000500x1x1x1"], "3037000500x3037000500x1x1x1", "overflow"),
        (["--op", "embed", "--shape", "1x4611686018427387904x152064"], "1x4611686018427387904x152064", "overflow"),
        (["--op", "gemm_fp8", "--shape", "9223372036854775807x9223372036854775807x9223372036854775807"],
         "9223372036854775807x9223372036854775807x9223372036854775807", "overflow"),
        (["--op", "rmsnorm", "--shape", "99999999999999999999x1"], "99999999999999999999x1", "malformed"),
        (["--op", "rmsnorm", "--shape", "-5x3584"], "", "positive"),
        (["--op", "rmsnorm", "--shape", "0x3584"], "", "positive"),
    ]
    for args, shape, word in impossible:
        what = " ".join(args)
        t0 = time.time()
        r = run(args + ["--backend", "cpu"], timeout=120)
        dt = time.time() - t0
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 2, f"{what}: exit {r.returncode}, want 2 ({r.stderr.strip()[:300]})")
        check(len(lines) == 1 and lines[0].startswith("kbench: "),
              f"{what}: one line on stderr starting 'kbench: ', got {lines[:5]}")
        check(not r.stdout.strip(), f"{what}: nothing on stdout (got {r.stdout[:200]!r})")
        if lines:
            check(word in lines[0] and shape in lines[0], f"{what}: the line names '{word}' and the shape: {lines[0]}")
        check(dt < 30, f"{what}: answered in {dt:.1f} s (nothing allocated)")
        no_sanitizer_report(r.stderr, what)

    # in a shape table they are rows: not_supported with the reason; the run goes on
    table = os.path.join(TMP, "sizes.tsv")
    with open(table, "w") as f:
        f.write("op n k kv_len heads kv_heads head_dim\n"
                "rmsnorm 2000000000 3584 - - - -\n"
                "attention 4294967296 - 4294967296 65536 1 65536\n"
                "rmsnorm 4 128 - - - -\n")
    path = os.path.join(TMP, "sizes.jsonl")
    r = run(["--shapes", table, "--backend", "cpu", "--no-timing", "--quiet", "--json", path])
    check(r.returncode == 0, f"a table with rows too big: exit {r.returncode}, want 0 ({r.stderr[-300:]})")
    with open(path) as f:
        rows = [json.loads(l) for l in f]
    verdicts = [(row["op"], row["shape"], row["verdict"]) for row in rows]
    check([v[2] for v in verdicts] == ["not_supported", "not_supported", "pass"],
          f"a table with rows too big: verdicts {verdicts}")
    if len(rows) == 3:
        check("memory" in rows[0]["reason"] and "overflow" in rows[1]["reason"],
              f"the not_supported rows say why: {rows[0]['reason']!r}, {rows[1]['reason']!r}")


# ------------------------------------------------------------------ cuda (GPU only)
def need_cuda():
    ok, line = backend_available("cuda")
    if not ok:
        skip(f"needs the cuda backend on a GPU: {line}")


def cuda_rows(args, env=None, timeout=900):
    path = os.path.join(TMP, "cuda.jsonl")
    if os.path.exists(path):
        os.remove(path)
    t0 = time.time()
    r = run(["--backend", "cuda", "--quiet", "--json", path] + args, env=env, timeout=timeout)
    with open(path) as f:
        rows = [json.loads(l) for l in f]
    return r, rows, time.time() - t0


def good_variants(op):
    """The cuda variants of `op` that are not test-only, from a clean run."""
    r, rows, _ = cuda_rows(["--op", op, "--shape", "4x3584", "--no-timing"])
    names = sorted({row["variant"] for row in rows if row["verdict"] == "pass"})
    check(r.returncode == 0 and names, f"cuda {op}: a clean run passes ({r.returncode}, variants {names})")
    return names


def check_recovery(rows, broken, what):
    """Every row of `broken` is an error; every other row passes, those after the first
    broken row included."""
    check(any(row["variant"] == broken for row in rows), f"{what}: the {broken} rows are there")
    for row in rows:
        if row["variant"] == broken:
            check(row["verdict"] == "error" and row["reason"], f"{what}: {row['shape']} {broken} is an error row "
                  f"with its reason ({row['verdict']}: {row['reason']!r})")
    first = next((i for i, row in enumerate(rows) if row["variant"] == broken), len(rows))
    after = [row for row in rows[first:] if row["variant"] != broken]
    check(after, f"{what}: rows ran after the first {broken} row")
    bad = [(row["shape"], row["variant"], row["verdict"], row["reason"]) for row in rows
           if row["variant"] != broken and row["verdict"] != "pass"]
    check(not bad, f"{what}: every other row passes, after the broken one too; not: {bad[:4]}")


def test_cuda_fault():
    need_cuda()
    good = good_variants("rmsnorm")
    r, rows, _ = cuda_rows(["--op", "rmsnorm", "--shapes", "smoke", "--no-timing", "--variant",
                            ",".join(["test_fault"] + good)], env={"KB_TEST_VARIANTS": "1"})
    check(r.returncode == 3, f"cuda test_fault: exit {r.returncode}, want 3 (an error row, none failed)")
    check_recovery(rows, "test_fault", "cuda test_fault")


def test_cuda_hang():
    need_cuda()
    good = good_variants("rmsnorm")
    timeout_s = 5
    r, rows, dt = cuda_rows(["--op", "rmsnorm", "--shapes", "smoke", "--no-timing", "--variant",
                             ",".join(["test_hang"] + good)],
                            env={"KB_TEST_VARIANTS": "1", "KB_CUDA_TIMEOUT_S": str(timeout_s)})
    check(r.returncode == 3, f"cuda test_hang: exit {r.returncode}, want 3 (error rows, none failed)")
    check_recovery(rows, "test_hang", "cuda test_hang")
    n_hang = sum(row["variant"] == "test_hang" for row in rows)
    limit = n_hang * (timeout_s + 30) + 60
    check(dt < limit, f"cuda test_hang: {n_hang} hung kernels cost {dt:.0f} s (limit {limit} s: the timeout "
          f"{timeout_s} s + a worker restart each)")


def worker_pids(parent):
    """Children of `parent` that are the cuda worker (kbcuda_worker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == parent and comm.startswith("kbcuda_worker"):
            pids.append(int(entry))
    return pids


def test_cuda_worker_kill():
    need_cuda()
    ops = ["--op", "rmsnorm,rope_neox,attention", "--shapes", "smoke", "--backend", "cuda", "--quiet"]
    clean_path = os.path.join(TMP, "clean.jsonl")
    clean = run(ops + ["--no-timing", "--json", clean_path])
    check(clean.returncode == 0, f"cuda clean run: exit {clean.returncode} ({clean.stderr[-300:]})")
    with open(clean_path) as f:
        clean_verdict = {row_key(row): row["verdict"] for row in map(json.loads, f)}
    csv_path, json_path = os.path.join(TMP, "kill.csv"), os.path.join(TMP, "kill.jsonl")
    p = subprocess.Popen([KBENCH] + ops + ["--reps", "30", "--max-time", "0.5", "--csv", csv_path, "--json", json_path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err_lines = []
    reader = threading.Thread(target=lambda: err_lines.extend(p.stderr), daemon=True)
    reader.start()
    killed = None
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and killed is None:
        if count_lines(csv_path) - 1 >= 2:
            pids = worker_pids(p.pid)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
        time.sleep(0.01)
    rc = p.wait(timeout=600)
    reader.join(timeout=60)
    stderr = "".join(err_lines)
    check(killed is not None, "cuda worker kill: found a kbcuda_worker child of kbench to kill")
    check(rc in (0, 3), f"cuda worker kill: exit {rc}, want 0 or 3 ({stderr[-300:]})")
    no_sanitizer_report(stderr, "cuda worker kill")
    _, rows = read_rows(csv_path, json_path, "cuda worker kill")
    got = {row_key(row): row for row in rows}
    check(got.keys() == clean_verdict.keys(), f"cuda worker kill: {len(rows)} rows, the clean run's "
          f"{len(clean_verdict)}: no case lost")
    # a row that passed in the clean run passes now, except the one in flight at the kill
    lost = [k for k, v in clean_verdict.items() if v == "pass" and k in got and got[k]["verdict"] != "pass"]
    check(len(lost) <= 1, f"cuda worker kill: {len(lost)} rows no longer pass, want at most the row in flight: "
          + "; ".join(f"{k[0]} {k[1]} {k[-1]} {got[k]['verdict']}: {got[k]['reason']}" for k in lost[:3]))
    for k in lost:
        check(got[k]["verdict"] == "error" and got[k]["reason"],
              f"cuda worker kill: the row in flight is an error row with its reason ({got[k]['verdict']}: "
              f"{got[k]['reason']!r})")
        after = rows[rows.index(got[k]) + 1:]
        check(any(r["verdict"] == "pass" for r in after), "cuda worker kill: rows after the killed one pass "
              "(a new worker)")


TESTS = {
    "signals": test_signals,
    "determinism": test_determinism,
    "sizes": test_sizes,
    "cuda_fault": test_cuda_fault,
    "cuda_hang": test_cuda_hang,
    "cuda_worker_kill": test_cuda_worker_kill,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] not in TESTS:
        sys.exit(f"usage: {sys.argv[0]} KBENCH {'|'.join(TESTS)} [args]")
    TESTS[sys.argv[2]](*sys.argv[3:])
    finish()
