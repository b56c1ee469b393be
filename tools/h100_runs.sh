#!/usr/bin/env bash
# The runs behind results/h100/, on the lent H100 (docs/DEVICE_RUNS.md). Build and
# fetch libraries here with tools/device_prepare.sh, then give the device tool
#   command: tools/h100_runs.sh STEP...   carry: [".gl", "build-device"]
# Each step writes kbench-STEP.csv under $OUT, and all of them log.txt (tools/device_run.sh).
#   gemm3584   gemm_fp8 M=K=3584, every N, cuda + cublaslt (heuristic) + vulkan, cold
#   hot3584    the same on cuda + cublaslt, hot (back-to-back, L2 warm)
#   table      the whole qwen2.5-7b table on cuda, cublaslt (heuristic), vulkan
#   table-OP   the same for one op
#   exhaustive cublaslt --algo exhaustive at M=K=3584, N in {1, 16, 512, 4096}
#   lmhead     lm_head 152064x{8,16}x3584 on cuda, cublaslt, vulkan
#   cpu        the whole qwen2.5-7b table on the cpu backend
#   sanitize   compute-sanitizer memcheck and racecheck over the smoke table (cuda)
set -uo pipefail
cd "$(dirname "$0")/.."
common=(--reps 20 --max-time 0.2 --progress)
for step in "$@"; do
  case $step in
    gemm3584) KB_TAG=$step tools/device_run.sh --op gemm_fp8 --shape 3584 --backend cuda,cublaslt,vulkan "${common[@]}" ;;
    hot3584) KB_TAG=$step tools/device_run.sh --op gemm_fp8 --shape 3584 --backend cuda,cublaslt --hot "${common[@]}" ;;
    table) KB_TAG=$step tools/device_run.sh --shapes qwen2.5-7b --backend cuda,cublaslt,vulkan "${common[@]}" ;;
    table-*) KB_TAG=$step tools/device_run.sh --op "${step#table-}" --shapes qwen2.5-7b --backend cuda,cublaslt,vulkan "${common[@]}" ;;
    exhaustive)
      KB_TAG=$step tools/device_run.sh --shapes shapes/gemm_fp8_3584_probe.tsv --backend cublaslt \
        --algo exhaustive --algo-cap 64 --reps 10 --max-time 0.1 --progress ;;
    lmhead)
      for n in 8 16; do
        KB_TAG=lmhead-n$n tools/device_run.sh --op gemm_fp8 --shape 152064x${n}x3584 --backend cuda,cublaslt,vulkan "${common[@]}"
      done ;;
    cpu) KB_TAG=$step tools/device_run.sh --shapes qwen2.5-7b --backend cpu --reps 5 --max-time 1 --progress ;;
    sanitize)
      for tool in memcheck racecheck; do
        KB_TAG=sanitize-$tool KB_WRAP="/usr/local/cuda/bin/compute-sanitizer --tool $tool --error-exitcode 9" \
          tools/device_run.sh --shapes smoke --backend cuda --no-timing
      done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  echo "== $step: exit $?"
done
