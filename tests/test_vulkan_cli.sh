#!/bin/sh
# test_vulkan_cli.sh KBENCH MODE OUTDIR - the vulkan backend through the kbench CLI, judged
# from the JSON Lines rows (one object per row; the fields are flat, so grep reads them).
#   smoke    every op and variant at the smoke shapes: every vulkan row passes, is timed
#            (cold, timestamps), every op and every variant has rows, exit 0
#   short    KB_TEST_VARIANTS=1, test_short_write: every row of every op fails with exactly
#            1 unwritten, exit 1
#   gptj     KB_TEST_VARIANTS=1, test_rope_gptj on rope_neox: every row fails, exit 1
#   feature  KB_VK_DISABLE_FEATURES=storageBuffer8BitAccess: the shaders that store or load
#            bytes are not_supported rows naming the feature; rmsnorm, embed from f32 and add
#            (f32 or bf16, no bytes) still pass, exit 0
#   uploads  smoke in rotate mode with the harness's device copies and with host uploads
#            (KB_HARNESS_UPLOADS=1): the same verdicts and hashes; the poison survives copies
#   list     --list-backends shows vulkan available and its device list
#   tune     --tune BLOCK=32:1024:*2 (the workgroup size, a specialization constant) on
#            rmsnorm and the element-wise ops: every point of every variant runs and passes
#            parity; BLOCK=96 and 2048 are not_supported saying why; an op without
#            tunables gets not_supported rows; --list-axes announces the points, exit 0
#   gemv_tune  gemm_fp8 gemv_sg's ROWS (rows per subgroup) and SGS (subgroups per workgroup),
#            specialization constants: every point passes parity at n = 1, 2, 5, 16 (K = 200:
#            word loads), vec128 at K = 1000 (several K chunks), blk128 with e5m2 X at K = 101
#            (byte loads), M not a multiple of a workgroup's rows; the points the plan cannot
#            take (ROWS x n over 64 sums, ROWS > 8, SGS past the device's workgroup) are
#            not_supported saying why; variants without tunables refuse ROWS, exit 0
# Exit 0 on success, 1 on a failed check, 77 (skipped) when kbench has no usable Vulkan device.
set -u
KBENCH=$1
MODE=$2
OUT=$3
mkdir -p "$OUT"
ROWS="$OUT/vulkan_$MODE.jsonl"
LOG="$OUT/vulkan_$MODE.log"
rm -f "$ROWS" "$LOG"
fails=0
passes=0
ok() { echo "ok   - $*"; passes=$((passes + 1)); }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
finish() {
    echo "$passes passed, $fails failed"
    [ "$fails" -eq 0 ] && exit 0
    exit 1
}

# No device here (no loader / ICD): a skip, never a pass.
if ! "$KBENCH" --list-backends 2>&1 | grep -q '^vulkan *available'; then
    echo "SKIP - vulkan backend unavailable here:"
    "$KBENCH" --list-backends 2>&1 | grep '^vulkan' || true
    exit 77
fi

# run EXPECTED_EXIT ARGS...: run kbench into $ROWS, check its exit code.
run() {
    want=$1
    shift
    "$KBENCH" --backend vulkan --shapes smoke --json "$ROWS" --quiet "$@" >"$LOG" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "kbench $* exits $rc"; else bad "kbench $* exits $rc, expected $want"; cat "$LOG"; fi
}
count() { grep -c "$1" "$ROWS" 2>/dev/null || true; }
rows_with() { # PATTERN DESCRIPTION: every row matches PATTERN
    total=$(count '"backend":"vulkan"')
    n=$(count "$1")
    if [ "$total" -gt 0 ] && [ "$n" -eq "$total" ]; then ok "all $total rows: $2"
    else bad "$n of $total rows: $2"; grep -v "$1" "$ROWS" | grep -o '"op":"[a-z_0-9]*"\|"shape":"[^"]*"\|"variant":"[^"]*"\|"verdict":"[a-z_]*","reason":"[^"]*"' | paste - - - - | head -20; fi
}
has_ops() { # OP...: each op has at least one row
    for op in "$@"; do
        n=$(count "\"op\":\"$op\"")
        if [ "$n" -gt 0 ]; then ok "$op: $n row(s)"; else bad "$op: no rows"; fi
    done
}
ALL_OPS="dequant_q4k rmsnorm gemm_fp8 rope_neox attention embed gemm_f32 add bias_add swiglu quant_fp8 weight_fp8"

case "$MODE" in
smoke)
    run 0 --op all --cold --reps 3 --max-time 0.2 --warmup 1
    has_ops $ALL_OPS
    rows_with '"verdict":"pass"' "verdict pass"
    rows_with '"time_med_us":[0-9]' "timed with device timestamps"
    rows_with '"mode":"cold"' "cold mode (cache flushed between samples)"
    for v in block256 row256 gemv gemv_sg tiled64 pairs prefill decode_split lookup elem256 vec4 group256; do
        n=$(count "\"variant\":\"$v\"")
        if [ "$n" -gt 0 ]; then ok "variant $v ran ($n rows)"; else bad "variant $v never ran"; fi
    done
    n=$(count '"variant":"test_')
    if [ "$n" -eq 0 ]; then ok "no test-only variant without KB_TEST_VARIANTS"; else bad "$n test-only rows leaked"; fi
    ;;
short)
    KB_TEST_VARIANTS=1 run 1 --op all --variant test_short_write --no-timing
    has_ops $ALL_OPS
    rows_with '"verdict":"fail"' "verdict fail"
    rows_with '"n_unwritten":1,' "exactly one element unwritten"
    ;;
gptj)
    KB_TEST_VARIANTS=1 run 1 --op rope_neox --variant test_rope_gptj --no-timing
    has_ops rope_neox
    rows_with '"verdict":"fail"' "verdict fail"
    rows_with '"n_unwritten":0,' "every element written (the values are wrong)"
    ;;
feature)
    KB_VK_DISABLE_FEATURES=storageBuffer8BitAccess run 0 --op dequant_q4k,gemm_fp8,embed,rmsnorm,quant_fp8,weight_fp8,add \
        --no-timing
    has_ops dequant_q4k gemm_fp8 embed rmsnorm quant_fp8 weight_fp8 add
    for op in dequant_q4k gemm_fp8 quant_fp8 weight_fp8; do
        t=$(count "\"op\":\"$op\"")
        n=$(grep "\"op\":\"$op\"" "$ROWS" | grep -c '"verdict":"not_supported","reason":"device lacks storageBuffer8BitAccess' || true)
        if [ "$t" -gt 0 ] && [ "$n" -eq "$t" ]; then ok "$op: $n not_supported rows naming storageBuffer8BitAccess"
        else bad "$op: $n of $t rows not_supported naming storageBuffer8BitAccess"; fi
    done
    n=$(grep '"op":"embed"' "$ROWS" | grep -c '"a_type":"f32".*"verdict":"pass"' || true)
    if [ "$n" -gt 0 ]; then ok "embed from an f32 table (no 8-bit storage needed) still passes"; else bad "embed f32 did not pass"; fi
    n=$(grep '"op":"rmsnorm"' "$ROWS" | grep -c '"verdict":"pass"' || true)
    t=$(count '"op":"rmsnorm"')
    if [ "$t" -gt 0 ] && [ "$n" -eq "$t" ]; then ok "rmsnorm (no optional feature) passes"; else bad "rmsnorm: $n of $t pass"; fi
    n=$(grep '"op":"add"' "$ROWS" | grep -c '"verdict":"pass"' || true)
    t=$(count '"op":"add"')
    if [ "$t" -gt 0 ] && [ "$n" -eq "$t" ]; then ok "add (f32, and bf16 through 16-bit storage) passes"; else bad "add: $n of $t pass"; fi
    ;;
tune)
    run 0 --op rmsnorm,add,bias_add,swiglu --tune BLOCK=32:1024:*2 --no-timing
    rows_with '"verdict":"pass"' "every tuned point passes parity"
    # smoke: rmsnorm 3 cases x row256; add, bias_add, swiglu 3 or 4 cases x elem256, vec4
    for op in rmsnorm add bias_add swiglu; do
        for b in 32 64 128 256 512 1024; do
            n=$(grep "\"op\":\"$op\"" "$ROWS" | grep -c "\"variant\":\"[a-z0-9]*\[BLOCK=$b\]\",.*\"detail\":\"[^\"]*at BLOCK=$b" || true)
            if [ "$n" -gt 0 ]; then ok "$op at BLOCK=$b: $n rows"; else bad "$op at BLOCK=$b: no rows"; fi
        done
    done
    n=$(grep -c '"variant":"\(row256\|elem256\|vec4\)",' "$ROWS" || true)
    if [ "$n" -eq 0 ]; then ok "no variant ran as written under --tune"; else bad "$n rows as written"; fi
    run 0 --op rmsnorm,add,dequant_q4k --tune BLOCK=96,2048 --no-timing
    n=$(grep -c '"verdict":"not_supported","reason":"[a-z0-9]*: BLOCK=\(96\|2048\) is no workgroup size of it (a power of two from 32 to the device' "$ROWS" || true)
    t=$(grep -v '"op":"dequant_q4k"' "$ROWS" | grep -c '"backend":"vulkan"' || true)
    if [ "$t" -gt 0 ] && [ "$n" -eq "$t" ]; then ok "BLOCK=96, 2048: $n not_supported rows saying why"
    else bad "BLOCK=96, 2048: $n of $t rows not_supported saying why"; fi
    n=$(grep '"op":"dequant_q4k"' "$ROWS" | grep -c '"verdict":"not_supported","reason":"[^"]*has no tunable BLOCK (it has none)' || true)
    t=$(count '"op":"dequant_q4k"')
    if [ "$t" -gt 0 ] && [ "$n" -eq "$t" ]; then ok "dequant_q4k (no tunables): $n not_supported rows"
    else bad "dequant_q4k: $n of $t rows not_supported for want of BLOCK"; fi
    "$KBENCH" --backend vulkan --op rmsnorm --shape 4x1000 --tune BLOCK=64,128 --list-axes >"$LOG" 2>&1
    if grep -q '^  vulkan *row256\[BLOCK=64\] ' "$LOG" && grep -q '^  vulkan *row256\[BLOCK=128\] ' "$LOG" &&
        grep -q '^1 cases x 2 tune points: 2 rows (vulkan 2)$' "$LOG"; then ok "--list-axes announces the 2 points"
    else bad "--list-axes"; cat "$LOG"; fi
    ;;
gemv_tune)
    # Each point is its own pipeline, which llvmpipe compiles in 0.2-5 s (more rows and tokens,
    # a longer unrolled body): the points are picked to cover the paths in ~40 s cold.
    # n = 1, 2 at K = 200 (word loads, one K chunk), M = 40 (a partial workgroup for all but one):
    # ROWS 1, 3, 8 x SGS 1, 8; n = 5, 16: ROWS 1, 3, 8 at SGS 8 (8 x 16 is refused)
    run 0 --op gemm_fp8 --shape 40x1,2x200 --variant gemv_sg --tune ROWS=1,3,8 --tune SGS=1,8 --no-timing
    t=$(count '"backend":"vulkan"')
    p=$(count '"variant":"gemv_sg\[ROWS=\([138]\),SGS=\([18]\)\]".*"detail":"[^"]*at ROWS=\1 SGS=\2 [^"]*".*"verdict":"pass"')
    if [ "$t" -eq 12 ] && [ "$p" -eq 12 ]; then ok "n = 1, 2, K = 200: all 12 points (ROWS 1, 3, 8 x SGS 1, 8) pass"
    else bad "n = 1, 2, K = 200: $p of $t points pass (want 12 of 12)"; fi
    run 0 --op gemm_fp8 --shape 40x5,16x200 --variant gemv_sg --tune ROWS=1,3,8 --tune SGS=8 --no-timing
    t=$(count '"backend":"vulkan"')
    p=$(count '"verdict":"pass"')
    ns=$(count '"variant":"gemv_sg\[ROWS=8,SGS=8\]".*"verdict":"not_supported","reason":"gemv_sg: ROWS=8 x 16 tokens = 128 sums per lane: at most 64 (registers)"')
    if [ "$t" -eq 6 ] && [ "$p" -eq 5 ] && [ "$ns" -eq 1 ]; then
        ok "n = 5, 16: 5 points pass, ROWS=8 at n = 16 (128 sums a lane) not_supported saying why"
    else bad "n = 5, 16: $p of $t pass (want 5 of 6), $ns ROWS=8 x 16 refusals (want 1)"; fi
    n=$(count '"variant":"gemv_sg",')
    if [ "$n" -eq 0 ]; then ok "no gemv_sg row as written under --tune"; else bad "$n gemv_sg rows as written"; fi
    # VEC128 at K = 1000, n = 2: several K chunks on lavapipe's 8-wide subgroups at ROWS 3 and 8
    # (the two W register sets); BLK128 with e5m2 X at K = 101: byte loads; SGS 3
    run 0 --op gemm_fp8 --shape 44x2x1000 --scale vec128 --variant gemv_sg --tune ROWS=3,8 --tune SGS=3 --no-timing
    t=$(count '"backend":"vulkan"')
    p=$(count '"verdict":"pass"')
    if [ "$t" -eq 2 ] && [ "$p" -eq 2 ]; then ok "vec128, K = 1000 (several K chunks): both points pass"
    else bad "vec128, K = 1000: $p of $t pass (want 2)"; fi
    run 0 --op gemm_fp8 --shape 44x1x101 --scale blk128 --b-type e5m2 --variant gemv_sg --tune ROWS=3,8 --tune SGS=3 \
        --no-timing
    t=$(count '"backend":"vulkan"')
    p=$(count '"verdict":"pass"')
    if [ "$t" -eq 2 ] && [ "$p" -eq 2 ]; then ok "blk128, e5m2 X, K = 101 (byte loads): both points pass"
    else bad "blk128, K = 101: $p of $t pass (want 2)"; fi
    # points the plan cannot take: one reason each, never a crash (SGS is checked first)
    run 0 --op gemm_fp8 --shape 64x2x256 --variant gemv_sg --tune ROWS=9,1048576 --tune SGS=4,1048576 --no-timing
    t=$(count '"backend":"vulkan"')
    nr=$(count '"variant":"gemv_sg\[ROWS=[0-9]*,SGS=4\]".*"verdict":"not_supported","reason":"gemv_sg: ROWS=\(9\|1048576\) rows per subgroup: at most 8 (two sets of one 16-byte W slice per row in 16 uvec4 registers)"')
    ng=$(count '"variant":"gemv_sg\[ROWS=[0-9]*,SGS=1048576\]".*"verdict":"not_supported","reason":"gemv_sg: SGS=1048576 subgroups of [0-9]* exceed the device.s [0-9]* invocations per workgroup"')
    if [ "$t" -eq 4 ] && [ "$nr" -eq 2 ] && [ "$ng" -eq 2 ]; then ok "ROWS=9, ROWS=1048576, SGS=1048576: not_supported saying why"
    else bad "refusals: $t rows (want 4), $nr for ROWS (want 2), $ng for SGS (want 2)"; fi
    # WDEC: W through binary16 bits (1) or f32 bits (0), either W format; 2 is refused
    run 0 --op gemm_fp8 --shape 40x1x256 --a-type e4m3,e5m2 --variant gemv_sg --tune WDEC=0,1,2 --no-timing
    t=$(count '"backend":"vulkan"')
    p=$(count '"variant":"gemv_sg\[WDEC=[01]\]".*"detail":"[^"]*WDEC=[01][^"]*".*"verdict":"pass"')
    nw=$(count '"variant":"gemv_sg\[WDEC=2\]".*"verdict":"not_supported","reason":"gemv_sg: WDEC=2: 0 (f32 bits) or 1 (binary16 bits)"')
    if [ "$t" -eq 6 ] && [ "$p" -eq 4 ] && [ "$nw" -eq 2 ]; then ok "WDEC 0, 1 pass with e4m3 and e5m2 W, WDEC=2 not_supported"
    else bad "WDEC: $t rows (want 6), $p pass (want 4), $nw refusals (want 2)"; fi
    run 0 --op gemm_fp8 --shape 64x8x256 --tune ROWS=2 --no-timing
    n=$(count '"variant":"\(gemv\|tiled64\)\[ROWS=2\]".*"verdict":"not_supported","reason":"[^"]*has no tunable ROWS (it has none)"')
    if [ "$n" -eq 2 ]; then ok "gemv, tiled64 (no tunables) under ROWS: not_supported"; else bad "gemv, tiled64 under ROWS=2: $n of 2 rows"; fi
    n=$(count '"variant":"gemv_sg\[ROWS=2\]".*"verdict":"pass"')
    if [ "$n" -eq 1 ]; then ok "gemv_sg[ROWS=2] at n = 8 passes"; else bad "gemv_sg[ROWS=2] at n = 8: $n rows pass"; fi
    "$KBENCH" --backend vulkan --op gemm_fp8 --shape 64x5x256 --variant gemv_sg --tune ROWS=2,8 --list-axes >"$LOG" 2>&1
    if grep -q '^  vulkan *gemv_sg\[ROWS=2\] .*at ROWS=2 SGS=4 ' "$LOG" && grep -q '^  vulkan *gemv_sg\[ROWS=8\] .*at ROWS=8 SGS=4 ' "$LOG" &&
        grep -q '^1 cases x 2 tune points: 2 rows (vulkan 2)$' "$LOG"; then ok "--list-axes announces gemv_sg's 2 points (SGS as written: 4)"
    else bad "--list-axes gemv_sg"; cat "$LOG"; fi
    ;;
uploads)
    # the harness keeps one set of a case's tensors on the device and copies it to every
    # variant and rotate copy (kb_backend.copy); uploading each from the host instead must
    # give the same rows: verdicts and output hashes
    run 0 --op all --mode rotate --reps 3 --max-time 0.05 --warmup 1
    rows_with '"verdict":"pass"' "verdict pass (device copies)"
    n=$(count 'not recorded')
    if [ "$n" -eq 0 ]; then ok "rotate samples replay one recorded command buffer"; else bad "$n rows not recorded"; fi
    key() { grep -o '"op":"[^"]*"\|"shape":"[^"]*"\|"variant":"[^"]*"\|"verdict":"[^"]*"\|"hash":"[^"]*"' "$ROWS" |
        paste - - - - - | sort; }
    key >"$OUT/uploads_copy.txt"
    KB_HARNESS_UPLOADS=1 run 0 --op all --mode rotate --reps 3 --max-time 0.05 --warmup 1
    key >"$OUT/uploads_host.txt"
    n=$(wc -l <"$OUT/uploads_copy.txt")
    if [ "$n" -gt 50 ] && cmp -s "$OUT/uploads_copy.txt" "$OUT/uploads_host.txt"; then
        ok "$n rows: the same verdicts and output hashes with device copies and with uploads"
    else bad "device copies and uploads differ ($n rows)"; diff "$OUT/uploads_copy.txt" "$OUT/uploads_host.txt" | head; fi
    KB_TEST_VARIANTS=1 run 1 --op all --variant test_short_write --mode rotate --reps 3 --max-time 0.05
    rows_with '"n_unwritten":1,' "device copies carry the poison: exactly one element unwritten"
    ;;
list)
    "$KBENCH" --list-backends >"$LOG" 2>&1
    if grep -q '^vulkan *available' "$LOG"; then ok "vulkan available"; else bad "vulkan not available"; fi
    if grep -q '^ *\[0\] .*Vulkan [0-9]' "$LOG"; then ok "device list printed"; else bad "no device list"; cat "$LOG"; fi
    ;;
*)
    echo "unknown mode $MODE"
    exit 2
    ;;
esac
finish
