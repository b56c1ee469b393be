#!/usr/bin/env python3
"""Markdown summary tables from kbench CSVs (the tables in results/README.md).

    tools/summarize.py results/h100

Per case and backend it takes the fastest *passing* variant (median of the cold
samples unless the file is a hot run). Fractions are of the H100's 3.0 TB/s copy
bandwidth as kbench measured it (the ceiling of the rows' ceiling_frac).
tools/leaderboard.py ranks any set of result files (any device, both row schemas);
this script prints the fixed tables of the H100 run. Standard library only."""
import os
import sys

from leaderboard import load_rows as load

BW = 3.0e12


def best(rows, **match):
    """Fastest passing row matching the given column values, or None."""
    cand = [r for r in rows if r["verdict"] == "pass" and r["time_med_us"] and all(r[k] == v for k, v in match.items())]
    return min(cand, key=lambda r: float(r["time_med_us"])) if cand else None


def us(r):
    return f"{float(r['time_med_us']):.1f}" if r else "-"


def gbs(r):
    return f"{float(r['gbps']):.0f}" if r else "-"


def frac_bw(r):
    return f"{100 * float(r['gbps']) * 1e9 / BW:.0f}%" if r else "-"


def tflops(r):
    return f"{float(r['tflops']):.1f}" if r else "-"


def worst(rows, **match):
    w = [float(r["worst_err_over_tol"]) for r in rows if r["worst_err_over_tol"] and all(r[k] == v for k, v in match.items())]
    return f"{max(w):.2f}" if w else "-"


def gemm_table(cold, hot):
    print("### gemm_fp8, M = K = 3584, e4m3 x e4m3, bf16 out, tensor scales (cold L2 unless marked)\n")
    print("| N | cuda best | us | cuBLASLt best heuristic | us | cuBLASLt hot us | cuda hot us | vulkan us | "
          "cuBLASLt TFLOP/s | cuda GB/s | rel_l2 cuda / cuBLASLt | worst err/tol cuda / cuBLASLt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted({int(r["n"]) for r in cold if r["op"] == "gemm_fp8"}):
        s = f"3584x{n}x3584"
        c, l = best(cold, shape=s, backend="cuda"), best(cold, shape=s, backend="cublaslt")
        lh, ch = best(hot, shape=s, backend="cublaslt"), best(hot, shape=s, backend="cuda")
        v = best(cold, shape=s, backend="vulkan")
        print(f"| {n} | {c['variant'] if c else '-'} | {us(c)} | {l['variant'] if l else '-'} | {us(l)} | {us(lh)} | "
              f"{us(ch)} | {us(v)} | {tflops(l)} | {gbs(c)} | "
              f"{float(c['rel_l2']) if c else 0:.2e} / {float(l['rel_l2']) if l else 0:.2e} | "
              f"{worst(cold, shape=s, backend='cuda')} / {worst(cold, shape=s, backend='cublaslt')} |")
    print()


def memory_table(t):
    print("### Memory-bound ops at the issue's target shapes (cold L2; % of 3.0 TB/s)\n")
    print("| op | shape | cuda best | us | GB/s | % of 3.0 TB/s | vulkan best | us | GB/s | worst err/tol cuda / vulkan |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for op, shape in [("dequant_q4k", "18944x3584"), ("dequant_q4k", "3584x3584"), ("embed", "512x3584x152064"),
                      ("rmsnorm", "512x3584"), ("rope_neox", "512x28x128"), ("rope_neox", "512x4x128"),
                      ("attention", "1x4096x28x4x128"), ("attention", "1x32768x28x4x128"),
                      ("attention", "4096x4096x28x4x128")]:
        c, v = best(t, op=op, shape=shape, backend="cuda"), best(t, op=op, shape=shape, backend="vulkan")
        print(f"| {op} | {shape} | {c['variant'] if c else '-'} | {us(c)} | {gbs(c)} | {frac_bw(c)} | "
              f"{v['variant'] if v else '-'} | {us(v)} | {gbs(v)} | "
              f"{worst(t, op=op, shape=shape, backend='cuda')} / {worst(t, op=op, shape=shape, backend='vulkan')} |")
    print()


def verdict_table(t, cpu):
    print("### Every row of the qwen2.5-7b table (rows, verdicts, worst err/tol over passing rows)\n")
    print("| op | backend | rows | pass | fail | not_supported | error | worst err/tol |")
    print("|---|---|---|---|---|---|---|---|")
    for op in ["dequant_q4k", "embed", "rmsnorm", "rope_neox", "attention", "gemm_fp8"]:
        for b, rows in [("cpu", cpu), ("cuda", t), ("cublaslt", t), ("vulkan", t)]:
            rs = [r for r in rows if r["op"] == op and r["backend"] == b]
            if not rs or all(r["verdict"] == "not_supported" for r in rs):
                continue
            cnt = {v: sum(r["verdict"] == v for r in rs) for v in ("pass", "fail", "not_supported", "error")}
            w = [float(r["worst_err_over_tol"]) for r in rs if r["verdict"] == "pass" and r["worst_err_over_tol"]]
            print(f"| {op} | {b} | {len(rs)} | {cnt['pass']} | {cnt['fail']} | {cnt['not_supported']} | "
                  f"{cnt['error']} | {max(w) if w else 0:.2f} |")
    print()


def exhaustive_table(ex, cold):
    print("### cuBLASLt exhaustive search (`--algo exhaustive --algo-cap 64`, both FAST_ACCUM settings; cold)\n")
    print("| N | algorithms timed | fastest | us | its identity | best heuristic us | rel_l2 FAST_ACCUM off / on |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted({int(r["n"]) for r in ex}):
        s = f"3584x{n}x3584"
        rs = [r for r in ex if r["shape"] == s]
        b = best(ex, shape=s)
        h = best(cold, shape=s, backend="cublaslt")
        off = [float(r["rel_l2"]) for r in rs if r["rel_l2"] and "fa0" in r["variant"]]
        on = [float(r["rel_l2"]) for r in rs if r["rel_l2"] and "fa1" in r["variant"]]
        ident = (f"algo {b['algo_id']} tile {b['tile']} splitk {b['splitk']} red {b['reduction']} "
                 f"swizzle {b['swizzle']} custom {b['custom']} cluster {b['cluster']}") if b else "-"
        print(f"| {n} | {len(rs)} | {b['variant'] if b else '-'} | {us(b)} | {ident} | {us(h)} | "
              f"{max(off) if off else 0:.2e} / {max(on) if on else 0:.2e} |")
    print()


def cpu_table(cpu):
    print("### cpu backend (float32 C, 16 threads of the H100 host; hot caches are irrelevant at these sizes)\n")
    print("| op | shape | us | GB/s | TFLOP/s | rel_l2 |")
    print("|---|---|---|---|---|---|")
    for op, shape in [("dequant_q4k", "18944x3584"), ("rmsnorm", "512x3584"), ("rope_neox", "512x28x128"),
                      ("attention", "1x4096x28x4x128"), ("embed", "512x3584x152064"), ("gemm_fp8", "3584x1x3584"),
                      ("gemm_fp8", "3584x512x3584"), ("gemm_fp8", "3584x4096x3584")]:
        r = best(cpu, op=op, shape=shape)
        print(f"| {op} | {shape} | {us(r)} | {gbs(r)} | {tflops(r)} | {float(r['rel_l2']) if r else 0:.2e} |")
    print()


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "results/h100"
    p = lambda n: os.path.join(d, n)  # noqa: E731
    t, cpu = load(p("table.csv")), load(p("cpu.csv"))
    gemm_table(load(p("gemm3584-cold.csv")), load(p("gemm3584-hot.csv")))
    memory_table(t)
    exhaustive_table(load(p("gemm3584-exhaustive.csv")), load(p("gemm3584-cold.csv")))
    verdict_table(t, cpu)
    cpu_table(cpu)


if __name__ == "__main__":
    main()
