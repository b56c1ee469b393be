#!/usr/bin/env python3
"""Compare two kbench result files row by row (same op, shape, case parameters,
backend, variant, mode; forward-pass rows also by layer, node and measure).

    tools/compare.py BASE NEW [--threshold 0.05]

BASE and NEW are kbench CSV or JSON Lines files, schema kbench-row-1, -2 or -3
(a case parameter one of them leaves empty matches any value). Prints, per matched
row, the median time of each, the ratio NEW/BASE, the rel_l2 of each, and flags
verdict changes and slowdowns past the threshold. Exits 1 when a row that passed in
BASE does not pass in NEW, 2 on bad input. tools/leaderboard.py --baseline does the
same over whole leaderboards, against each row's own noise. Standard library only."""
import argparse
import sys

from leaderboard import FORWARD, InputError, load_rows, match_rows, num


def key(r):
    """What must be equal for two rows to be the same row (case parameters are matched
    separately, by leaderboard.match_rows)."""
    return (r["op"], r["shape"], r["backend"], r["variant"], r["mode"]) + tuple(r[c] for c in FORWARD)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.05, help="flag slowdowns beyond this fraction")
    a = ap.parse_args()
    try:
        base, new = load_rows(a.base), load_rows(a.new)
    except InputError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        sys.exit(2)
    pairs, only_b, only_n = match_rows(base, new, key)
    regressions = 0
    print(f"{'op':11} {'shape':20} {'backend':8} {'variant':22} {'base_us':>9} {'new_us':>9} {'ratio':>6} "
          f"{'base_l2':>9} {'new_l2':>9}  note")
    for b, n in sorted(pairs, key=lambda p: key(p[1])):
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
        print(f"{n['op']:11} {n['shape']:20} {n['backend']:8} {n['variant'][:22]:22} {fmt(tb, '9.2f')} "
              f"{fmt(tn, '9.2f')} {fmt(ratio, '6.3f')} {fmt(num(b['rel_l2']), '9.2e')} "
              f"{fmt(num(n['rel_l2']), '9.2e')}  {', '.join(notes)}")
    print(f"{len(pairs)} rows matched, {len(only_b)} only in base, {len(only_n)} only in new, "
          f"{regressions} pass -> not pass")
    sys.exit(1 if regressions else 0)


if __name__ == "__main__":
    main()
