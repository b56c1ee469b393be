#!/usr/bin/env python3
"""Throughput leaderboard, regression flags and plots from kbench result rows.

    tools/leaderboard.py RESULTS... [--csv OUT.csv] [--md OUT.md] [--top N] [--op OP,...]
                         [--baseline OLD ...] [--noise-k 3] [--noise-floor 0.05]
                         [--plots DIR] [--plot roofline,gemm-n,error,drift] [--sweep-by COLUMN]

RESULTS are files kbench wrote with --csv or --json (JSON Lines), schema kbench-row-1
kbench-row-2 or kbench-row-3, from any number of devices and commits. Per case (device, op, shape,
case parameters, timing mode) the rows that passed parity rank by median time; rows
that failed or errored are listed apart and never rank, however fast; not_supported
and skipped rows are counted. With --baseline, each row is compared with the same
row of the older results: slower beyond its own noise, or a changed verdict, is
flagged. Output schema (kbench-leaderboard-1), rules and plots: docs/LEADERBOARD.md.

Exit status: 0; 1 when a --baseline row got slower beyond its noise or stopped
passing; 2 on bad usage or input. The loader (load_rows, match_rows) needs only the
standard library and is shared with tools/compare.py and tools/summarize.py; numpy
and matplotlib are imported for --plots only."""
import argparse
import csv
import gzip
import json
import math
import os
import re
import statistics
import sys
from collections import Counter, defaultdict

ROW_SCHEMAS = ("kbench-row-1", "kbench-row-2", "kbench-row-3")
BOARD_SCHEMA = "kbench-leaderboard-1"

# Row columns this module reads (bench/report.c defines them all, results/README.md
# documents them). A case parameter is empty when the op does not read it.
SIZE_PARAMS = ("m", "n", "k", "heads", "kv_heads", "head_dim", "kv_len")
CASE_PARAMS = SIZE_PARAMS + ("eps", "theta", "max_pos", "a_type", "b_type", "out_type", "scale_mode", "flush")
IDENTITY = ("variant", "algo_id", "tile", "stages", "splitk", "reduction", "swizzle", "custom", "cluster")
FORWARD = ("layer", "node", "measure")
USED = ("schema", "timestamp", "git_commit", "host", "device", "driver", "op", "shape", "backend", "verdict",
        "reason", "mode", "reps", "time_med_us", "time_min_us", "time_max_us", "cv", "gbps", "tflops",
        "ceiling_frac", "bw_ceiling_gbps", "bw_ceiling_source", "flop_ceiling_tflops", "bytes", "flops",
        "max_abs", "rel_l2", "cosine", "worst_err_over_tol", "n_bad", "n_nan", "hash"
        ) + CASE_PARAMS + IDENTITY + FORWARD

# The leaderboard's columns, in order (docs/LEADERBOARD.md documents each).
BOARD_COLUMNS = (("schema", "device", "op", "shape") + CASE_PARAMS + (
    "mode", "rank", "disposition", "group_pass", "group_fail", "group_error", "group_not_supported",
    "group_skipped", "backend") + IDENTITY + (
    "time_med_us", "time_min_us", "time_max_us", "cv", "reps", "vs_best", "gbps", "tflops", "ceiling_frac",
    "bw_ceiling_gbps", "flop_ceiling_tflops", "ceiling_source", "bytes", "flops",
    "verdict", "reason", "max_abs", "rel_l2", "cosine", "worst_err_over_tol", "n_bad", "n_nan", "hash",
    "device_name", "driver", "host", "git_commit", "timestamp", "source_file", "source_line",
    "base_time_med_us", "base_cv", "base_verdict", "base_git_commit", "base_source", "time_ratio",
    "noise_threshold", "change", "regression"))

VERDICTS = ("pass", "fail", "error", "not_supported", "skipped")
APART = ("fail", "error")  # listed apart, never ranked
COUNTED = ("not_supported", "skipped")  # counted only (listed when a baseline flags them)


class InputError(Exception):
    """A results file that cannot be read as kbench rows (one clear line)."""


# ---- loading (shared with compare.py and summarize.py) ----------------------------------

def num(s):
    """The cell as a float, or None when it is empty or not a number."""
    try:
        x = float(s)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _json_cell(v):
    """A JSON Lines value as the CSV writes it: null is empty, numbers as C's %.6g."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "%.6g" % v
    return str(v)


def _read_records(path):
    """(line number, dict of strings) for each row of a CSV or JSON Lines file."""
    try:
        opener = gzip.open if path.endswith(".gz") else open  # a large sweep is committed compressed
        with opener(path, "rt", newline="") as f:
            text = f.read()
    except (OSError, EOFError) as e:
        raise InputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if text.lstrip().startswith("{"):
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{i}: not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{i}: not a JSON object")
            yield i, {k: _json_cell(v) for k, v in obj.items()}
        return
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        return
    if "schema" not in reader.fieldnames:
        raise InputError(f"{path}: not a kbench CSV (no schema column in the header)")
    for r in reader:
        yield reader.line_num, {k: (v or "") for k, v in r.items() if k is not None}


_order = 0  # file order of every row loaded, for "newest wins" ties


def load_rows(path):
    """Every row of one kbench result file (CSV or JSON Lines, kbench-row-1 or -2).

    Cells are strings as the CSV has them ("" = not applicable). A kbench-row-1 row
    gets the columns it lacks (empty) and its unused sizes, printed as 0 then, emptied.
    Each row also carries where it came from: _file, _line and a load order _order."""
    global _order
    rows = []
    for line, r in _read_records(path):
        schema = r.get("schema", "")
        if schema not in ROW_SCHEMAS:
            raise InputError(f"{path}:{line}: schema {schema!r} is not one of {', '.join(ROW_SCHEMAS)}")
        for c in USED:
            r.setdefault(c, "")
        if schema == "kbench-row-1":
            for p in SIZE_PARAMS:
                if r[p] == "0":
                    r[p] = ""
        _order += 1
        r.update(_file=path, _line=line, _order=_order)
        rows.append(r)
    return rows


def params_compatible(a, b):
    """True when no case parameter is set in both rows to different values (an unset
    one matches anything, so kbench-row-1 rows match their kbench-row-2 reruns)."""
    return all(not (a[p] and b[p]) or a[p] == b[p] for p in CASE_PARAMS)


def match_rows(base, new, coarse):
    """Pairs (b, n) of rows with equal coarse(row) and compatible case parameters, one
    to one, in the order of new; then the rows of base and of new left unmatched."""
    pool = defaultdict(list)
    for b in base:
        pool[coarse(b)].append(b)
    pairs, unmatched_new = [], []
    for n in new:
        cands = pool.get(coarse(n), [])
        hit = next((i for i, b in enumerate(cands) if params_compatible(b, n)), None)
        if hit is None:
            unmatched_new.append(n)
        else:
            pairs.append((cands.pop(hit), n))
    return pairs, [b for bs in pool.values() for b in bs], unmatched_new


# ---- keys ---------------------------------------------------------------------------------

def device_key(row):
    """The device a row ran on, without the backend's parenthetical (architecture,
    driver): cuda, cuBLASLt and Vulkan on one GPU rank together."""
    return row["device"].split(" (", 1)[0].strip()


def is_forward(row):
    """A forward-pass row (kbench forward: layer, node, measure) rather than one op."""
    return bool(row["layer"] or row["node"])


def case_key(row):
    """(device, op, shape, case parameters...): what the rows of one group share."""
    return (device_key(row), row["op"], row["shape"]) + tuple(row[p] for p in CASE_PARAMS)


def contender_key(row):
    """One contender: the case, the timing mode, the backend and the algorithm identity."""
    return case_key(row) + (row["mode"], row["backend"]) + tuple(row[c] for c in IDENTITY + FORWARD)


def _natural(s):
    """Sort key that orders 3584x16x3584 before 3584x128x3584."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s)]


def latest_per_contender(rows):
    """The newest row (timestamp, then load order) of each contender: a rerun replaces
    the row it repeats, whatever file or commit the older one came from."""
    best = {}
    for r in rows:
        k = contender_key(r)
        if k not in best or (r["timestamp"], r["_order"]) > (best[k]["timestamp"], best[k]["_order"]):
            best[k] = r
    return list(best.values())


# ---- ceilings -----------------------------------------------------------------------------

ROW1_CEILING_SOURCE = "derived from kbench-row-1 ceiling_frac"


def derive_row1_ceilings(rows):
    """kbench-row-1 rows have ceiling_frac but not the ceilings; recover them.

    ceiling_frac = floor / median with floor = max(bytes / bw, flops / peak) (bench/harness.c),
    so bytes / floor equals bw on memory-bound rows and is below it on compute-bound
    ones: bw is its maximum per (device, backend); the rows clearly below it give the
    flop peak as the median of flops / floor per (device, backend, op)."""
    per = defaultdict(list)
    for r in rows:
        cf, t, b, f = num(r["ceiling_frac"]), num(r["time_med_us"]), num(r["bytes"]), num(r["flops"])
        if r["schema"] == "kbench-row-1" and cf and t and b:
            floor = cf * t * 1e-6
            per[(r["device"], r["backend"])].append((b / floor, (f or 0) / floor, r["op"]))
    bw, peak = {}, {}
    for key, pts in per.items():
        bw[key] = max(p[0] for p in pts) * 1e-9
        by_op = defaultdict(list)
        for b_rate, f_rate, op in pts:
            if b_rate < 0.99 * bw[key] * 1e9 and f_rate > 0:
                by_op[op].append(f_rate)
        for op, rates in by_op.items():
            peak[key + (op,)] = statistics.median(rates) * 1e-12
    return bw, peak


def row_ceilings(row, row1):
    """(bandwidth GB/s, flop TFLOP/s, source) of the ceilings the row's ceiling_frac is of."""
    if row["schema"] != "kbench-row-1":
        return num(row["bw_ceiling_gbps"]), num(row["flop_ceiling_tflops"]), row["bw_ceiling_source"]
    bw, peak = row1
    key = (row["device"], row["backend"])
    if key not in bw:
        return None, None, ""
    return bw[key], peak.get(key + (row["op"],)), ROW1_CEILING_SOURCE


# ---- the leaderboard ----------------------------------------------------------------------

def _fmt(x, spec=".4g"):
    """A number as a cell ("" for None)."""
    return "" if x is None else format(x, spec)


def _entry(r, mode, rank, disposition, counts, best, row1):
    """One leaderboard row (BOARD_COLUMNS) for result row r in its group."""
    bw, peak, source = row_ceilings(r, row1)
    t = num(r["time_med_us"])
    e = {c: "" for c in BOARD_COLUMNS}
    e.update({c: r[c] for c in ("op", "shape") + CASE_PARAMS + ("backend",) + IDENTITY})
    e.update({c: r[c] for c in ("time_med_us", "time_min_us", "time_max_us", "cv", "reps", "gbps", "tflops",
                                "ceiling_frac", "bytes", "flops", "verdict", "reason", "max_abs", "rel_l2",
                                "cosine", "worst_err_over_tol", "n_bad", "n_nan", "hash", "driver", "host",
                                "git_commit", "timestamp")})
    e.update(schema=BOARD_SCHEMA, device=device_key(r), mode=mode, rank=rank, disposition=disposition,
             vs_best=_fmt(t / best if t and best else None), bw_ceiling_gbps=_fmt(bw, ".6g"),
             flop_ceiling_tflops=_fmt(peak, ".6g"), ceiling_source=source if bw else "",
             device_name=r["device"], source_file=r["_file"], source_line=str(r["_line"]))
    for v in VERDICTS:
        e[f"group_{v}"] = str(counts[v])
    e["_row"] = r
    e["_listed"] = disposition not in COUNTED
    return e


def rank_group(members, mode, row1):
    """The entries of one group: passing timed rows ranked 1.. by median time (ties by
    the fastest sample, then name), passing untimed rows, then failed and errored rows
    (rank "-"), then not_supported / skipped rows (counted, not listed)."""
    counts = Counter(r["verdict"] for r in members)
    passing = [r for r in members if r["verdict"] == "pass"]
    timed = sorted((r for r in passing if num(r["time_med_us"])),
                   key=lambda r: (num(r["time_med_us"]), num(r["time_min_us"]) or math.inf, r["backend"],
                                  r["variant"]))
    best = num(timed[0]["time_med_us"]) if timed else None
    out = [_entry(r, mode, str(i), "ranked", counts, best, row1) for i, r in enumerate(timed, 1)]
    out += [_entry(r, mode, "-", "untimed", counts, best, row1) for r in passing if not num(r["time_med_us"])]
    others = sorted((r for r in members if r["verdict"] != "pass"),
                    key=lambda r: (r["verdict"] in COUNTED, num(r["time_med_us"]) or math.inf, r["backend"],
                                   r["variant"]))
    out += [_entry(r, mode, "-", r["verdict"], counts, best, row1) for r in others]
    return out


def build_board(rows):
    """The leaderboard of single-op rows (forward-pass rows are left to the drift plot):
    the newest row of each contender, grouped by case and timing mode. An untimed row
    (not_supported, skipped, parity only) belongs to every timed group of its case."""
    row1 = derive_row1_ceilings(rows)
    by_case = defaultdict(list)
    for r in latest_per_contender(r for r in rows if not is_forward(r)):
        by_case[case_key(r)].append(r)
    board = []
    for ck in sorted(by_case, key=lambda k: [_natural(x) for x in k]):
        rs = by_case[ck]
        modes = sorted({r["mode"] for r in rs if r["mode"]}) or [""]
        for mode in modes:
            board += rank_group([r for r in rs if r["mode"] in (mode, "")], mode, row1)
    return board


def _board_coarse(e):
    """What must be equal for two leaderboard rows to be the same row of two result sets."""
    return (e["device"], e["op"], e["shape"], e["mode"], e["backend"]) + tuple(e[c] for c in IDENTITY)


def change_of(base, new, noise_k, noise_floor):
    """(notes, ratio, threshold, regression) of one row against its baseline.

    Slower or faster counts only beyond the noise of both runs: the threshold is
    max(noise_k * sqrt(cv_base^2 + cv_new^2), noise_floor), the timing spread of either
    run can move a ratio that far. Only rows that pass in both are compared on time.
    A regression is a slowdown beyond the threshold or a pass that no longer passes."""
    notes, ratio, thr = [], None, None
    if base["verdict"] != new["verdict"]:
        notes.append(f"verdict {base['verdict']} -> {new['verdict']}")
    tb, tn = num(base["time_med_us"]), num(new["time_med_us"])
    if base["verdict"] == new["verdict"] == "pass" and tb and tn:
        ratio = tn / tb
        thr = max(noise_k * math.hypot(num(base["cv"]) or 0.0, num(new["cv"]) or 0.0), noise_floor)
        if ratio > 1 + thr:
            notes.append("slower")
        elif ratio < 1 / (1 + thr):
            notes.append("faster")
    regression = "slower" in notes or (base["verdict"] == "pass" and new["verdict"] != "pass")
    return notes, ratio, thr, regression


def flag_changes(board, base_board, noise_k, noise_floor):
    """Fill the base_* and change columns of every entry from its match in base_board
    ("new" when it has none); return (regressions, changed entries, baseline entries
    with no match)."""
    pairs, gone, fresh = match_rows(base_board, board, _board_coarse)
    for e in fresh:
        e["change"] = "new"
    changed, regressions = [], 0
    for b, e in pairs:
        notes, ratio, thr, regression = change_of(b, e, noise_k, noise_floor)
        e.update(base_time_med_us=b["time_med_us"], base_cv=b["cv"], base_verdict=b["verdict"],
                 base_git_commit=b["git_commit"], base_source=f"{b['source_file']}:{b['source_line']}",
                 time_ratio=_fmt(ratio), noise_threshold=_fmt(thr), change="; ".join(notes),
                 regression="1" if regression else "")
        if notes:
            e["_listed"] = True
            changed.append(e)
        regressions += regression
    return regressions, changed, gone


# ---- writing ------------------------------------------------------------------------------

def write_csv(board, path):
    """The leaderboard CSV: every listed entry, BOARD_COLUMNS in order."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=BOARD_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(e for e in board if e["_listed"])


def _cell(s):
    """Text safe inside a markdown table cell."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def params_text(e):
    """The case parameters that the shape does not already say, as name=value."""
    return " ".join(f"{p}={e[p]}" for p in CASE_PARAMS if p not in SIZE_PARAMS and e[p])


def _us(s):
    """A time in microseconds for the markdown."""
    x = num(s)
    return "-" if x is None else f"{x:.2f}" if x < 1000 else f"{x:.0f}"


def _g(s, spec=".3g"):
    """A number cell for the markdown ("-" when empty)."""
    x = num(s)
    return "-" if x is None else format(x, spec)


def _pct(s):
    """A fraction as a percentage ("-" when empty or 0: no ceiling)."""
    x = num(s)
    return "-" if not x else f"{100 * x:.2g}%"


def _source(e):
    """Where an entry's row came from: file:line @commit."""
    return f"{os.path.basename(e['source_file'])}:{e['source_line']} @{e['git_commit'][:12] or '?'}"


def render_markdown(board, rows, files, top, baseline=None):
    """The leaderboard as markdown: per device its ceilings, the ranked rows (top N per
    group), the rows listed apart (failed, errored), coverage counts, and the changes
    against the baseline when there is one."""
    out = [f"# kbench leaderboard ({BOARD_SCHEMA})\n"]
    commits = sorted({r["git_commit"] for r in rows if r["git_commit"]})
    fwd = sum(is_forward(r) for r in rows)
    vc = Counter(r["verdict"] for r in rows)
    out.append(f"{len(rows)} rows from {len(files)} file(s) ({', '.join(os.path.basename(f) for f in files)}), "
               f"commit(s) {', '.join(c[:12] for c in commits) or '-'}: "
               + ", ".join(f"{vc[v]} {v}" for v in VERDICTS)
               + (f"; {fwd} forward-pass rows are not ranked (see the drift plot)" if fwd else "") + ".\n")
    out.append("Per case and timing mode, the rows that passed parity rank by median time; failed and errored "
               "rows are listed apart and never rank, however fast; not_supported and skipped rows are counted. "
               "The newest row of each variant counts. `vs #1`: median over the winner's.\n")
    for dev in sorted({e["device"] for e in board}, key=_natural):
        ents = [e for e in board if e["device"] == dev]
        out.append(f"## {dev or '(no device: backend unavailable)'}\n")
        ceil = defaultdict(set)
        for e in ents:
            if num(e["bw_ceiling_gbps"]):
                ceil[f"{num(e['bw_ceiling_gbps']):.0f} GB/s ({e['ceiling_source']})"].add(e["backend"])
            if num(e["flop_ceiling_tflops"]):
                ceil[f"{num(e['flop_ceiling_tflops']):.4g} TFLOP/s for {e['op']}"].add(e["backend"])
        if ceil:
            out.append("Ceilings: " + "; ".join(f"{k} [{', '.join(sorted(v))}]" for k, v in sorted(ceil.items()))
                       + ".\n")
        groups = defaultdict(list)
        for e in ents:
            groups[(e["op"], e["shape"], params_text(e), e["mode"])].append(e)
        ranked = []
        for (op, shape, par, mode), es in groups.items():
            shown = [e for e in es if e["disposition"] == "ranked"]
            shown = shown[:top] if top > 0 else shown
            if not shown and any(e["disposition"] in APART + ("untimed",) for e in es):
                g = es[0]
                ranked.append([op, shape, par, mode, "-", "no passing timed row", "", "", "", "", "", "", "", "",
                               f"{g['group_pass']} pass, {g['group_fail']} fail, {g['group_error']} error", ""])
            for i, e in enumerate(shown):
                lead = [op, shape, par, mode] if i == 0 else ["", "", "", ""]
                ranked.append(lead + [e["rank"], e["backend"], e["variant"], _us(e["time_med_us"]), _g(e["cv"], ".2f"),
                                      _g(e["gbps"], ".4g"), _g(e["tflops"], ".4g"), _pct(e["ceiling_frac"]),
                                      _g(e["rel_l2"], ".2e"), _g(e["worst_err_over_tol"], ".3f"),
                                      _g(e["vs_best"], ".2f"), _source(e)])
        if ranked:
            out.append(_table(["op", "shape", "parameters", "mode", "#", "backend", "variant", "median us", "cv",
                               "GB/s", "TFLOP/s", "% ceiling", "rel_l2", "err/tol", "vs #1", "from"], ranked))
        apart, seen = [], set()
        for e in ents:  # an untimed row sits in every timing mode's group: list it once
            if e["disposition"] in APART and id(e["_row"]) not in seen:
                seen.add(id(e["_row"]))
                apart.append(e)
        if apart:
            out.append(f"### {dev}: failed or errored (never ranked)\n")
            out.append(_table(["op", "shape", "parameters", "mode", "backend", "variant", "verdict", "median us",
                               "vs #1", "err/tol", "rel_l2", "reason", "from"],
                              [[e["op"], e["shape"], params_text(e), e["_row"]["mode"] or "-", e["backend"],
                                e["variant"], e["verdict"], _us(e["time_med_us"]), _g(e["vs_best"], ".2f"),
                                _g(e["worst_err_over_tol"], ".3g"), _g(e["rel_l2"], ".2e"), e["reason"], _source(e)]
                               for e in apart]))
        cov = Counter()
        seen = set()
        for e in ents:  # a contender once, though an untimed one sits in every mode's group
            k = id(e["_row"])
            if k not in seen:
                seen.add(k)
                cov[(e["op"], e["backend"], e["verdict"])] += 1
        keys = sorted({(op, b) for op, b, _ in cov}, key=lambda k: (_natural(k[0]), k[1]))
        out.append(f"### {dev or '(no device)'}: rows per op and backend\n")
        out.append(_table(["op", "backend"] + list(VERDICTS),
                          [[op, b] + [str(cov[(op, b, v)]) for v in VERDICTS] for op, b in keys]))
    if baseline is not None:
        files_b, regressions, changed, gone, board_n = baseline
        out.append("## Against the baseline\n")
        out.append(f"Baseline: {', '.join(os.path.basename(f) for f in files_b)}. {board_n} rows matched; "
                   f"{sum(e['change'] == 'new' for e in board)} new, {len(gone)} only in the baseline; "
                   f"**{regressions} regression(s)** (slower beyond max(k*sqrt(cv_base^2+cv_new^2), floor), or "
                   "pass -> not pass).\n")
        if changed:
            out.append(_table(["device", "op", "shape", "parameters", "mode", "backend", "variant", "base us",
                               "new us", "ratio", "threshold", "change", "regression", "base from", "new from"],
                              [[e["device"], e["op"], e["shape"], params_text(e), e["mode"], e["backend"],
                                e["variant"], _us(e["base_time_med_us"]), _us(e["time_med_us"]),
                                _g(e["time_ratio"], ".3f"), _g(e["noise_threshold"], ".3f"), e["change"],
                                "yes" if e["regression"] else "",
                                f"{os.path.basename(e['base_source'])} @{e['base_git_commit'][:12] or '?'}",
                                _source(e)] for e in changed]))
    return "\n".join(out)


# ---- plots (matplotlib, Agg) ----------------------------------------------------------------

PLOT_KINDS = ("roofline", "gemm-n", "error", "drift")
SCALE_ORDER = ("tensor", "outer", "vec128", "blk128")


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _slug(s):
    """A device or op name as part of a file name."""
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "none"


def _save(fig, out_dir, name):
    """Write the figure as DIR/NAME (PNG) and close it; the path."""
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _colors(n):
    """n distinguishable colours."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


MARKERS = {"cpu": "s", "cuda": "o", "cublaslt": "D", "vulkan": "^"}


def plot_roofline(board, out_dir):
    """Per device: each case's best passing row at (flops/bytes, TFLOP/s), colour by op,
    marker by backend, under the measured bandwidth line and the flop ceilings. Cold
    groups are preferred: a hot row of a case that also has a cold one is left out."""
    plt = _pyplot()
    paths = []
    for dev in sorted({e["device"] for e in board if e["device"]}):
        best = [e for e in board if e["device"] == dev and e["rank"] == "1"]
        cold_cases = {(e["op"], e["shape"], params_text(e)) for e in best if e["mode"] == "cold"}
        pts = [e for e in best if e["mode"] == "cold" or (e["op"], e["shape"], params_text(e)) not in cold_cases]
        pts = [e for e in pts if num(e["flops"]) and num(e["bytes"]) and num(e["tflops"])]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(10, 6.5))
        ops = sorted({e["op"] for e in pts})
        color = dict(zip(ops, _colors(len(ops))))
        xs = [num(e["flops"]) / num(e["bytes"]) for e in pts]
        x_lo, x_hi = min(xs) / 2, max(xs) * 2
        for op, b in sorted({(e["op"], e["backend"]) for e in pts}):
            sel = [(x, num(e["tflops"])) for e, x in zip(pts, xs) if e["op"] == op and e["backend"] == b]
            ax.scatter(*zip(*sel), color=color[op], marker=MARKERS.get(b, "v"), s=36, edgecolors="black",
                       linewidths=0.4, zorder=3)
        bws = [(num(e["bw_ceiling_gbps"]), e["ceiling_source"]) for e in board
               if e["device"] == dev and num(e["bw_ceiling_gbps"])]
        if bws:
            bw, src = max(bws)
            ax.plot([x_lo, x_hi], [bw * x_lo * 1e-3, bw * x_hi * 1e-3], "k--", lw=1.2,
                    label=f"memory ceiling {bw:.0f} GB/s ({src})")
        else:
            ax.plot([], [], " ", label="(the rows carry no measured memory ceiling)")
        peaks = defaultdict(set)
        for e in board:
            if e["device"] == dev and num(e["flop_ceiling_tflops"]):
                peaks[round(num(e["flop_ceiling_tflops"]), 3)].add(e["op"])
        for (peak, pops), ls in zip(sorted(peaks.items()), ("-", "-.", ":", "--")):
            ax.axhline(peak, color="gray", ls=ls, lw=1.2,
                       label=f"flop ceiling {peak:.4g} TFLOP/s ({', '.join(sorted(pops))})")
        for op in ops:
            ax.scatter([], [], color=color[op], marker="o", label=op)
        for b in sorted({e["backend"] for e in pts}):
            ax.scatter([], [], color="white", edgecolors="black", marker=MARKERS.get(b, "v"), label=b)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_xlabel("arithmetic intensity (flops / minimum bytes)")
        ax.set_ylabel("achieved TFLOP/s (flops / median time)")
        ax.set_title(f"{dev}: roofline, best passing row of each of {len(pts)} cases")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
        fig.tight_layout()
        paths.append(_save(fig, out_dir, f"roofline-{_slug(dev)}.png"))
    return paths


def _gemm_n(e):
    """N of a gemm case: the middle size of its MxNxK shape (else the n column)."""
    parts = e["shape"].split("x")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else int(num(e["n"]) or 0)


def plot_gemm_n(board, out_dir, op="gemm_fp8"):
    """Per device: median time and TFLOP/s against N for each gemm_fp8 problem (M, K,
    types, scales; the eight with most N values), one line per backend (and timing mode):
    the fastest passing variant of that backend at each N."""
    plt = _pyplot()
    paths = []
    for dev in sorted({e["device"] for e in board if e["device"]}):
        best = defaultdict(dict)  # problem -> (backend, mode) -> N -> entry
        for e in board:
            if e["device"] != dev or e["op"] != op or e["disposition"] != "ranked":
                continue
            prob = (e["m"], e["k"], params_text(e))
            series = best[prob].setdefault((e["backend"], e["mode"]), {})
            n = _gemm_n(e)
            if n not in series or num(e["time_med_us"]) < num(series[n]["time_med_us"]):
                series[n] = e
        probs = [p for p in best if len({n for s in best[p].values() for n in s}) >= 2]
        probs = sorted(probs, key=lambda p: -len({n for s in best[p].values() for n in s}))[:8]
        if not probs:
            continue
        probs.sort(key=lambda p: (int(p[0] or 0), int(p[1] or 0), p[2]))
        fig, axes = plt.subplots(len(probs), 2, figsize=(12, 3.4 * len(probs) + 0.6), squeeze=False,
                                 layout="constrained")
        backends = sorted({b for p in probs for b, _ in best[p]})
        color = dict(zip(backends, _colors(len(backends))))
        for (m, k, par), (ax_t, ax_f) in zip(probs, axes):
            for (b, mode), s in sorted(best[(m, k, par)].items()):
                ns = sorted(s)
                style = dict(color=color[b], marker=MARKERS.get(b, "v"), ls="-" if mode != "hot" else "--",
                             label=f"{b} ({mode})")
                ax_t.plot(ns, [num(s[n]["time_med_us"]) for n in ns], **style)
                ax_f.plot(ns, [num(s[n]["tflops"]) or float("nan") for n in ns], **style)
            for ax, ylabel in ((ax_t, "median time (us)"), (ax_f, "TFLOP/s")):
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_xlabel("N (tokens)")
                ax.set_ylabel(ylabel)
                ax.grid(True, which="both", alpha=0.3)
                short = " ".join(f"{kv.split('=')[0].split('_')[0]}={kv.split('=')[1]}" for kv in par.split())
                ax.set_title(f"M={m} K={k} {short}", fontsize=9)
            ax_t.legend(fontsize=7)
        fig.suptitle(f"{dev}: {op}, fastest passing variant per backend against N")
        paths.append(_save(fig, out_dir, f"gemm-n-{_slug(dev)}.png"))
    return paths


def _sweep_column(ents, by):
    """The column a sweep varies: `by`, or (auto) scale_mode when it takes several
    values, else the variant (an algorithm sweep); None when neither varies."""
    cands = [by] if by != "auto" else ["scale_mode", "variant"]
    for c in cands:
        if len({e[c] for e in ents if e[c]}) > 1:
            return c
    return None


def plot_error_sweep(board, out_dir, by="auto"):
    """Per device and op with a sweep axis: worst_err_over_tol and rel_l2 of every row
    that has metrics against the swept value (scale mode, algorithm...), colour by
    backend (or shape when there is one backend); failed and errored rows as crosses."""
    plt = _pyplot()
    paths = []
    cases = defaultdict(list)
    for e in board:
        if e["device"] and (num(e["worst_err_over_tol"]) is not None or num(e["rel_l2"]) is not None):
            cases[(e["device"], e["op"])].append(e)
    for (dev, op), ents in sorted(cases.items()):
        seen, uniq = set(), []
        for e in ents:  # an untimed row sits in every timing mode's group: plot it once
            if id(e["_row"]) not in seen:
                seen.add(id(e["_row"]))
                uniq.append(e)
        col = _sweep_column(uniq, by)
        if col is None:
            continue
        values = sorted({e[col] for e in uniq if e[col]},
                        key=lambda v: (SCALE_ORDER.index(v) if v in SCALE_ORDER else len(SCALE_ORDER), _natural(v)))
        xpos = {v: i for i, v in enumerate(values)}
        hue_col = "backend" if len({e["backend"] for e in uniq}) > 1 else "shape"
        hues = sorted({e[hue_col] for e in uniq}, key=_natural)
        color = dict(zip(hues, _colors(len(hues))))
        width = max(9.0, 0.11 * len(values) + 4)
        fig, (ax_w, ax_l) = plt.subplots(2, 1, figsize=(width, 8), sharex=True)
        present = defaultdict(list)  # the hues at each x, side by side
        for e in uniq:
            if e[col] and e[hue_col] not in present[e[col]]:
                present[e[col]].append(e[hue_col])
        points = defaultdict(lambda: ([], [], []))  # (hue, passed) -> xs, worst, rel_l2
        for e in (e for e in uniq if e[col]):
            here = sorted(present[e[col]], key=hues.index)
            x = xpos[e[col]] + (here.index(e[hue_col]) - (len(here) - 1) / 2) * min(0.6 / len(here), 0.15)
            xs, ws, ls = points[(e[hue_col], e["verdict"] == "pass")]
            xs.append(x)
            ws.append(max(num(e["worst_err_over_tol"]) or 0.0, 1e-6))
            ls.append(max(num(e["rel_l2"]) or 0.0, 1e-12))
        for (h, ok), (xs, ws, ls) in points.items():
            style = dict(color=color[h], marker="o" if ok else "X", s=22 if ok else 70, zorder=3 if ok else 4,
                         edgecolors="none" if ok else "black", linewidths=0.6)
            ax_w.scatter(xs, ws, **style)
            ax_l.scatter(xs, ls, **style)
        ax_w.axhline(1.0, color="red", ls="--", lw=1, label="tolerance (a row fails above 1)")
        for h in hues:
            ax_w.scatter([], [], color=color[h], marker="o", label=f"{hue_col} {h}")
        ax_w.scatter([], [], color="white", edgecolors="black", marker="X", s=60, label="failed / errored")
        ax_w.set_yscale("log")
        ax_l.set_yscale("log")
        ax_w.set_ylabel("worst |err| / tolerance (0 drawn at 1e-6)")
        ax_l.set_ylabel("rel_l2 (0 drawn at 1e-12)")
        ax_w.legend(fontsize=7, ncol=2)
        ax_l.set_xticks(range(len(values)))
        ax_l.set_xticklabels(values, rotation=90 if len(values) > 8 else 0, fontsize=6 if len(values) > 40 else 8)
        ax_l.set_xlabel(col)
        for ax in (ax_w, ax_l):
            ax.grid(True, which="both", alpha=0.3)
        ax_w.set_title(f"{dev}: {op} error against {col} ({len(uniq)} rows)")
        fig.tight_layout()
        paths.append(_save(fig, out_dir, f"error-{op}-{_slug(col)}-{_slug(dev)}.png"))
    return paths


def plot_drift(rows, out_dir):
    """Per device and forward step, from forward-pass rows: rel_l2 and 1 - cosine against
    the layer, one colour per node, solid chained (each node fed the backend's own
    previous outputs) and dashed isolated (fed the reference's). A step is one figure:
    the prompt and each decode step revisit every layer. The nodes of one forward may
    run on two backends (cuda + cublaslt), so the figure is per device, not backend."""
    plt = _pyplot()
    paths = []
    fwd = [r for r in latest_per_contender(r for r in rows if is_forward(r)) if num(r["layer"]) is not None]
    step_of = lambda r: int(num(r.get("step")) or 0)
    for dev, step in sorted({(device_key(r), step_of(r)) for r in fwd}):
        rs = [r for r in fwd if device_key(r) == dev and step_of(r) == step]
        backend = ",".join(sorted({r["backend"] for r in rs}))
        nodes = list(dict.fromkeys(r["node"] for r in sorted(rs, key=lambda r: (int(num(r["layer"])), r["_order"]))))
        color = dict(zip(nodes, _colors(len(nodes))))
        fig, (ax_l, ax_c) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
        for node in nodes:
            for measure, ls in (("chained", "-"), ("isolated", "--")):
                pts = sorted(((int(num(r["layer"])), r) for r in rs if r["node"] == node and r["measure"] == measure),
                             key=lambda p: p[0])
                if not pts:
                    continue
                layers = [p[0] for p in pts]
                rel = [max(num(r["rel_l2"]) or 0.0, 1e-12) for _, r in pts]
                cos = [max(1 - (num(r["cosine"]) if num(r["cosine"]) is not None else 1), 1e-7) for _, r in pts]
                for ax, ys in ((ax_l, rel), (ax_c, cos)):
                    ax.plot(layers, ys, color=color[node], ls=ls, marker=".", lw=1.3)
                    bad = [(x, y) for x, y, (_, r) in zip(layers, ys, pts) if r["verdict"] in ("fail", "error")]
                    if bad:
                        ax.scatter(*zip(*bad), color=color[node], marker="X", s=70, edgecolors="black", zorder=3)
        for node in nodes:
            ax_l.plot([], [], color=color[node], lw=2, label=node)
        ax_l.plot([], [], color="black", ls="-", label="chained")
        ax_l.plot([], [], color="black", ls="--", label="isolated")
        ax_l.scatter([], [], color="white", edgecolors="black", marker="X", s=70, label="failed")
        ax_l.legend(fontsize=7, ncol=3)
        ax_l.set_ylabel("rel_l2 against the fp64 reference")
        ax_c.set_ylabel("1 - cosine (the column has 6 digits:\n0 = below 1e-6, drawn at 1e-7)")
        ax_c.set_xlabel("layer")
        for ax in (ax_l, ax_c):
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        ax_l.set_title(f"{dev} / {backend}, step {step}: drift through the forward pass, chained vs isolated")
        fig.tight_layout()
        paths.append(_save(fig, out_dir, f"drift-{_slug(dev)}-step{step}.png"))
    return paths


def render_plots(board, rows, out_dir, kinds, sweep_by="auto"):
    """Every plot of the kinds asked for that the rows have data for; the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    if "roofline" in kinds:
        paths += plot_roofline(board, out_dir)
    if "gemm-n" in kinds:
        paths += plot_gemm_n(board, out_dir)
    if "error" in kinds:
        paths += plot_error_sweep(board, out_dir, sweep_by)
    if "drift" in kinds:
        paths += plot_drift(rows, out_dir)
    return paths


# ---- command line ---------------------------------------------------------------------------

def load_all(paths, ops=None):
    """The rows of every file, in order (only the ops named, when ops is given)."""
    rows = []
    for p in paths:
        rows += [r for r in load_rows(p) if not ops or r["op"] in ops]
    return rows


def main(argv=None):
    """The command line (module docstring); the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Schema and rules: docs/LEADERBOARD.md")
    ap.add_argument("results", nargs="+", help="kbench --csv or --json files")
    ap.add_argument("--csv", metavar="OUT", help="write the leaderboard CSV (kbench-leaderboard-1)")
    ap.add_argument("--md", metavar="OUT", help="write the markdown rendering (default: to stdout when no "
                                                "--csv or --plots is given)")
    ap.add_argument("--top", type=int, default=3, help="ranked rows per group in the markdown (0: all; default 3)")
    ap.add_argument("--op", help="only these ops (comma list)")
    ap.add_argument("--baseline", action="append", default=[], metavar="OLD",
                    help="older results to compare with (repeatable)")
    ap.add_argument("--noise-k", type=float, default=3.0, help="noise multiple of the runs' combined cv (default 3)")
    ap.add_argument("--noise-floor", type=float, default=0.05, help="smallest flagged change (default 0.05)")
    ap.add_argument("--plots", metavar="DIR", help="write PNG plots into DIR")
    ap.add_argument("--plot", default=",".join(PLOT_KINDS), help=f"which plots (default {','.join(PLOT_KINDS)})")
    ap.add_argument("--sweep-by", default="auto", help="the error plot's x axis column (default: scale_mode when "
                                                       "it varies, else variant)")
    a = ap.parse_args(argv)
    kinds = [k for k in a.plot.split(",") if k]
    bad = [k for k in kinds if k not in PLOT_KINDS]
    if bad:
        ap.error(f"--plot: unknown kind {bad[0]!r} (kinds: {', '.join(PLOT_KINDS)})")
    if a.noise_k < 0 or a.noise_floor < 0:
        ap.error("--noise-k and --noise-floor must be >= 0")
    ops = set(a.op.split(",")) if a.op else None
    try:
        rows = load_all(a.results, ops)
        base_rows = load_all(a.baseline, ops)
    except InputError as e:
        print(f"leaderboard.py: {e}", file=sys.stderr)
        return 2
    board = build_board(rows)
    baseline = None
    regressions = 0
    if a.baseline:
        regressions, changed, gone = flag_changes(board, build_board(base_rows), a.noise_k, a.noise_floor)
        matched = sum(bool(e["base_verdict"]) for e in board)
        baseline = (a.baseline, regressions, changed, gone, matched)
    if a.csv:
        write_csv(board, a.csv)
    md = render_markdown(board, rows, a.results, a.top, baseline)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    elif not a.csv and not a.plots:
        sys.stdout.write(md)
    written = render_plots(board, rows, a.plots, kinds, a.sweep_by) if a.plots else []
    listed = [e for e in board if e["_listed"]]
    print(f"leaderboard: {len(rows)} rows -> {sum(e['disposition'] == 'ranked' for e in listed)} ranked, "
          f"{sum(e['disposition'] in APART for e in listed)} failed/errored listed apart, "
          f"{len({(e['device'], e['op'], e['shape'], params_text(e), e['mode']) for e in board})} groups"
          + (f"; {regressions} regression(s) against the baseline" if a.baseline else "")
          + "".join(f"\n  wrote {p}" for p in [a.csv, a.md] + written if p), file=sys.stderr)
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
