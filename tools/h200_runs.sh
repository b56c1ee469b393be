#!/usr/bin/env bash
# The runs behind results/h200/, on the lent H200 (docs/DEVICE_RUNS.md).
#   here:  tools/device_prepare.sh          (builds devbin/ and, for the hash comparison,
#                                           devold/ from the last commit before the redesign)
#   there: tools/h200_runs.sh STEP...       carry: .gl devbin devold
# Every step writes into $OUT/run/ and the shared $OUT/log.txt, under its own time limit,
# so a slow step cannot take the later ones with it; at the end $OUT/run/ is packed into
# $OUT/<first step>.tgz (at most 8 files come back from a device call).
#   check     the device, the chain test, smoke parity new vs old (hashes), fault
#             isolation, the vulkan selftest, synthetic:tiny forward on cuda/cublaslt/vulkan,
#             the timing method (flush write vs read, cold/hot/rotate, an empty kernel,
#             the independent cuBLASLt loop)
#   recheck   what check found broken, after the fixes; Vulkan's subgroup GEMV and glue
#   table     the qwen2.5-7b table: parity and timing on cuda,cublaslt,vulkan, under
#             TABLE_BUDGET seconds, the points devbin/table.csv holds skipped (copy
#             results/h200/table.csv there to continue it; hashes compared with
#             results/h100/table.csv: the same sm_90 code)
#   sweep     gemm_fp8 3584: scale modes x out types x operand types x FAST_ACCUM x
#             cuBLASLt's exhaustive algorithms x N
#   forward   synthetic:qwen2.5-7b: the forward on cuda+cublaslt and cuda (q4k-fp8-tensor),
#             cuda f32, cuda+cublaslt q4k-fp8-row
#   falsify   synthetic:qwen2.5-7b: kbench falsify --stage all, cuda+cublaslt q4k-fp8-tensor
#   determinism  the qwen2.5-7b table on cuda,cublaslt with --repeat 5 (output hashes agree)
#   v3        gemv_v3's parity and timing (KB_CUDA_UNVERIFIED=1)
#   sanitize  compute-sanitizer memcheck/racecheck/initcheck/synccheck
set -uo pipefail
cd "$(dirname "$0")/.."
for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done
ldconfig
export LD_LIBRARY_PATH=$PWD/.gl:${LD_LIBRARY_PATH:-}
[ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export PATH=/usr/local/cuda/bin:$PATH
export XDG_CACHE_HOME=$PWD/devbin/nvrtc-cache # the sm_90 cubins device_prepare.sh made
K=devbin/kbench
OLD=devold/kbench
OUT=${OUT:-/tmp/h200}
R=$OUT/run
mkdir -p "$R"
LOG=$OUT/log.txt
first=${1:-check}

# Every step ends before CALL_LIMIT seconds from the start (default 580, under the device
# call's 600), so the results are packed even when the last step is cut short.
DEADLINE=$(( $(date +%s) + ${CALL_LIMIT:-580} - 15 ))

# run NAME LIMIT_S CMD...: the command's output into the log, its exit code after it;
# the limit is cut to what is left before DEADLINE
run() {
  local name=$1 limit=$2
  shift 2
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -lt 5 ]; then echo "= [$name] not run: the call's time is spent" >>"$LOG"; return 0; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "+ [$name] $*" >>"$LOG"
  local t0=$(date +%s%N)
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "= [$name] rc=$rc $(( ($(date +%s%N) - t0) / 1000000 )) ms" >>"$LOG"
  return 0
}

# the runs more than one step repeats (LIMIT first)
run_faults() {
  run faults "$1" env KB_TEST_VARIANTS=1 KB_CUDA_TIMEOUT_S=10 $K --op rmsnorm,gemm_fp8 --shapes smoke \
    --backend cuda,cublaslt --no-timing --quiet --csv "$R/faults.csv"
}
run_lt_rotate() { run lt_rotate "$1" devbin/lt_rotate_check 1 16 512 4096; }
run_tiny_cublaslt() {
  run tiny_cublaslt "$1" $K forward --model synthetic:tiny --backend cuda --gemm cublaslt --recipe q4k-fp8-tensor \
    --steps 2 --reps 20 --csv "$R/tiny-cublaslt.csv"
}

step_check() {
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv >>"$LOG" 2>&1
  run list 60 $K --list-backends
  run lt_probe 240 devbin/test_cublaslt_probe
  run chain 120 devbin/test_chain
  run vk_selftest 180 devbin/test_vulkan_selftest
  run smoke_new 240 $K --shapes smoke --backend cuda,cublaslt,vulkan --no-timing --quiet --csv "$R/smoke-new.csv"
  run smoke_old 240 env KB_SHAPES_DIR=devold/shapes $OLD --shapes smoke --backend cuda,cublaslt,vulkan --no-timing \
    --quiet --csv "$R/smoke-old.csv"
  run_faults 180
  for t in cuda_fault cuda_hang cuda_worker_kill; do
    run "reliability_$t" 240 python3 tests/test_reliability.py $K $t
  done
  for b in "cuda --recipe f32" "cuda --recipe q4k-fp8-row" "cuda --gemm cublaslt --recipe q4k-fp8-tensor" \
           "vulkan --recipe fp8-block"; do
    local tag=$(echo "$b" | tr ' ' '_' | tr -d -)
    run "tiny_$tag" 120 $K forward --model synthetic:tiny --backend $b --steps 2 --reps 20 --csv "$R/tiny-$tag.csv"
  done
  # the timing method: write vs read flush, cold/hot/rotate, against cuBLASLt in a plain loop
  local cases=("gemm_fp8 3584x1,16x3584" "rmsnorm 4096x3584" "rope_neox 4096x28x128" "dequant_q4k 18944x3584"
               "embed 4096x3584x152064" "attention 1x32768x28x4x128")
  for flush in write read; do
    for c in "${cases[@]}"; do
      set -- $c
      run "cold_${flush}_$1" 90 env KB_CUDA_FLUSH=$flush $K --op $1 --shape $2 --backend cuda,cublaslt \
        --fast-accum off --reps 20 --quiet --csv "$R/cold-$flush-$1.csv"
    done
  done
  for mode in hot rotate; do
    for c in "${cases[@]}"; do
      set -- $c
      run "${mode}_$1" 90 $K --op $1 --shape $2 --backend cuda,cublaslt --fast-accum off --mode $mode --reps 20 \
        --quiet --csv "$R/$mode-$1.csv"
    done
  done
  run rotate_lt 90 $K --op gemm_fp8 --shape 3584x1,16,512,4096x3584 --backend cublaslt --fast-accum off --mode rotate \
    --reps 30 --quiet --csv "$R/rotate-cublaslt.csv"
  run_lt_rotate 120
}

# what the first check found broken, again after the fixes; the Vulkan subgroup GEMV
step_recheck() {
  run chain 120 devbin/test_chain
  run vk_selftest 240 devbin/test_vulkan_selftest
  run_faults 120
  run_tiny_cublaslt 120
  run_lt_rotate 120
  run vk_gemv 120 $K --op gemm_fp8 --shape 3584x1,2,4,8,16x3584 --backend vulkan,cuda,cublaslt --fast-accum off \
    --mode rotate --reps 20 --max-time 0.2 --quiet --csv "$R/gemv.csv"
  run vk_glue 120 $K --op add,bias_add,swiglu --shape 3584x1,16,512,4096 --backend vulkan,cuda --mode rotate --reps 10 \
    --max-time 0.1 --quiet --csv "$R/glue.csv"
}

# the qwen2.5-7b table (parity and timing on cuda, cublaslt, vulkan): stops starting cases
# after TABLE_BUDGET seconds and resumes from devbin/table.csv when an earlier call left one
step_table() {
  local resume=() budget=${TABLE_BUDGET:-400} left=$(( DEADLINE - $(date +%s) - 40 ))
  [ "$left" -lt "$budget" ] && budget=$left
  # the points devbin/table.csv holds are skipped; table.csv gets the rest (a file of the
  # previous row schema is read, never appended to)
  [ -s devbin/table.csv ] && resume=(--resume devbin/table.csv)
  run table "${TABLE_LIMIT:-560}" $K --shapes qwen2.5-7b --backend cuda,cublaslt,vulkan --mode rotate --reps 10 --max-time 0.1 \
    --warmup 1 --budget "$budget" --progress --csv "$R/table.csv" "${resume[@]}"
}

step_sweep() {
  run sweep 540 $K --op gemm_fp8 --shape 3584x1:4096:*4x3584 --scale tensor,outer,vec128,blk128 --out-type bf16,f16,f32 \
    --a-type e4m3,e5m2 --b-type e4m3,e5m2 --fast-accum both --algo exhaustive --algo-cap 16 --backend cuda,cublaslt \
    --mode rotate --reps 5 --max-time 0.05 --warmup 1 --budget 500 --quiet --csv "$R/sweep.csv"
}

# synthetic:qwen2.5-7b through the whole decoder (16-token prompt, 3 decode steps), the case
# that started kbench; FORWARD_CONFIGS: ';'-separated "--backend ... --recipe ..." lists
step_forward() {
  local IFS=';'
  local cfgs=(${FORWARD_CONFIGS:-cuda --gemm cublaslt --recipe q4k-fp8-tensor;cuda --recipe f32})
  unset IFS
  for b in "${cfgs[@]}"; do
    local tag=$(echo "$b" | tr ' ' '_' | tr -d -)
    run "7b_$tag" "${FORWARD_LIMIT:-200}" $K forward --model synthetic:qwen2.5-7b --backend $b --steps 3 --reps 20 \
      --progress --csv "$R/7b-$tag.csv"
  done
}

# gemv_v3 (TMA bulk copies; compiled here, hidden unless KB_CUDA_UNVERIFIED=1): parity on
# the smoke table first, under a short reply timeout, then decode GEMMs beside v2 and cuBLASLt
step_v3() {
  run v3_smoke 60 env KB_CUDA_UNVERIFIED=1 KB_CUDA_TIMEOUT_S=30 $K --op gemm_fp8 --shapes smoke --backend cuda \
    --variant 'gemv_v3*' --no-timing --quiet --csv "$R/v3-smoke.csv"
  local i=0
  for sh in 3584x1,3,16,64x3584 512x1,16x3584 18944x1,16x3584 3584x1,16x18944; do
    run "v3_parity_$sh" 40 env KB_CUDA_UNVERIFIED=1 KB_CUDA_TIMEOUT_S=30 $K --op gemm_fp8 --shape $sh --backend cuda \
      --variant 'gemv_v3*' --no-timing --quiet --csv "$R/v3-parity-$((i++)).csv"
  done
  run v3_time 120 env KB_CUDA_UNVERIFIED=1 KB_CUDA_TIMEOUT_S=30 $K --op gemm_fp8 --shape 3584x1,2,4,8,16x3584 \
    --backend cuda,cublaslt --fast-accum off --variant 'gemv_v3*,gemv_v2_b256_u4,h0*' --mode rotate --reps 20 \
    --max-time 0.2 --quiet --csv "$R/v3-time.csv"
}

# kbench falsify --stage all on synthetic:qwen2.5-7b, one run per FALSIFY_CONFIGS entry
step_falsify() {
  local IFS=';'
  local cfgs=(${FALSIFY_CONFIGS:-cuda --gemm cublaslt --recipe q4k-fp8-tensor})
  unset IFS
  for b in "${cfgs[@]}"; do
    local tag=$(echo "$b" | tr ' ' '_' | tr -d -)
    run "falsify_$tag" "${FALSIFY_LIMIT:-200}" $K falsify --stage all --model synthetic:qwen2.5-7b --backend $b --steps 1 \
      --progress --out "$R/falsify-$tag" --csv "$R/falsify-b-$tag.csv"
  done
}

# the last call of the session: the new Vulkan bandwidth probe, the independent cuBLASLt
# loop, and the falsifier given the time it needs
step_final() {
  run list 60 $K --list-backends
  run_lt_rotate 60
  FALSIFY_LIMIT=${FALSIFY_LIMIT:-270} step_falsify
}

# determinism on the qwen2.5-7b table: every cuda and cuBLASLt variant run 5 times on
# freshly poisoned outputs, one reference per case (--repeat: a differing hash fails)
step_determinism() {
  run determinism "${DET_LIMIT:-500}" $K --shapes qwen2.5-7b --backend cuda,cublaslt --no-timing --repeat 5 --progress \
    --budget "${DET_BUDGET:-450}" --csv "$R/determinism.csv"
}

# compute-sanitizer over SAN_SHAPES (default the smoke table; qwen2.5-7b for the whole
# table, resumable per tool: SAN_RESUME=1 skips what devbin/sanitize-TOOL.csv holds)
step_sanitize() {
  for tool in ${SAN_TOOLS:-memcheck racecheck initcheck synccheck}; do
    local resume=()
    [ -n "${SAN_RESUME:-}" ] && [ -s "devbin/sanitize-$tool.csv" ] && resume=(--resume "devbin/sanitize-$tool.csv")
    run "san_$tool" "${SAN_LIMIT:-300}" compute-sanitizer --tool $tool --target-processes all --error-exitcode 9 \
      $K --shapes "${SAN_SHAPES:-smoke}" --backend cuda,cublaslt --no-timing --quiet --budget "${SAN_BUDGET:-280}" \
      --csv "$R/sanitize-$tool.csv" "${resume[@]}"
  done
}

for s in "$@"; do
  echo "=== step $s $(date -u +%FT%TZ)" >>"$LOG"
  "step_$s"
done
tar czf "$OUT/$first.tgz" -C "$R" . && rm -rf "$R"
