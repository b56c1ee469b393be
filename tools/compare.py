#!/usr/bin/env python3
"""Compare two kbench CSVs row by row (same op, shape, backend, variant, mode).

    tools/compare.py BASE.csv NEW.csv [--threshold 0.05]

Prints, per matched row, the median time of each, the ratio NEW/BASE, the
rel_l2 of each, and flags verdict changes and slowdowns past the threshold.
Exits 1 when a row that passed in BASE does not pass in NEW. Standard library only."""
import argparse
import csv
import sys


def key(r):
    return (r["op"], r["shape"], r["a_type"], r["b_type"], r["out_type"], r["scale_mode"], r["backend"],
            r["variant"], r["mode"])


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and rows[0].get("schema") != "kbench-row-1":
        sys.exit(f"{path}: not a kbench-row-1 CSV (schema {rows[0].get('schema')!r})")
    return {key(r): r for r in rows}


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.05, help="flag slowdowns beyond this fraction")
    a = ap.parse_args()
    base, new = load(a.base), load(a.new)
    regressions = 0
    print(f"{'op':11} {'shape':20} {'backend':8} {'variant':22} {'base_us':>9} {'new_us':>9} {'ratio':>6} "
          f"{'base_l2':>9} {'new_l2':>9}  note")
    for k in sorted(set(base) & set(new)):
        b, n = base[k], new[k]
        tb, tn = num(b["time_med_us"]), num(n["time_med_us"])
        ratio = tn / tb if tb and tn else None
        notes = []
        if b["verdict"] != n["verdict"]:
            notes.append(f"verdict {b['verdict']} -> {n['verdict']}")
            if b["verdict"] == "pass":
                regressions += 1
        if ratio and ratio > 1 + a.threshold:
            notes.append("slower")
        if ratio and ratio < 1 - a.threshold:
            notes.append("faster")
        fmt = lambda x, f: format(x, f) if x is not None else "-"  # noqa: E731
        print(f"{k[0]:11} {k[1]:20} {k[6]:8} {k[7][:22]:22} {fmt(tb, '9.2f')} {fmt(tn, '9.2f')} "
              f"{fmt(ratio, '6.3f')} {fmt(num(b['rel_l2']), '9.2e')} {fmt(num(n['rel_l2']), '9.2e')}  {', '.join(notes)}")
    only_b, only_n = len(set(base) - set(new)), len(set(new) - set(base))
    print(f"{len(set(base) & set(new))} rows matched, {only_b} only in base, {only_n} only in new, "
          f"{regressions} pass -> not pass")
    sys.exit(1 if regressions else 0)


if __name__ == "__main__":
    main()
