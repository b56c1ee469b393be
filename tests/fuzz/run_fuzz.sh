#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) and run each for a while.
#   tests/fuzz/run_fuzz.sh [SECONDS] [TARGET...]     default 60 s, every target
#   KB_FUZZ_RUNS=N     stop each target after N executions instead (0: use SECONDS)
#   KB_FUZZ_BUILD=DIR  build folder (default build-fuzz)
# Each target starts from its seeds (tests/fuzz/corpus/<target>/), works in
# $KB_FUZZ_BUILD/fuzz-work/<target>/ (the corpus it grows stays out of the tree) and
# stops at the first crash, leak, timeout (10 s) or sanitizer report; the input is
# kept in $KB_FUZZ_BUILD/fuzz-artifacts/<target>/. A crash becomes a regression
# test by copying that file into tests/fuzz/corpus/<target>/ (CTest replays it).
# Prints the executions per target; exits non-zero when any target found a problem.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
build=${KB_FUZZ_BUILD:-build-fuzz}
runs=${KB_FUZZ_RUNS:-0}
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=($(sed -n 's/^set(KB_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/fuzz.cmake))
fi
cc=${KB_FUZZ_CC:-clang}
cxx=${KB_FUZZ_CXX:-clang++}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_WERROR=ON -DKB_FUZZ=ON \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
      -DKB_BACKEND_CUDA=OFF -DKB_BACKEND_VULKAN=OFF >/dev/null
cmake --build "$build" --target fuzz_targets >/dev/null

status=0
for t in "${targets[@]}"; do
  work="$build/fuzz-work/$t"
  art="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$art"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  limit=(-max_total_time="$seconds")
  ((runs > 0)) && limit=(-runs="$runs")
  log="$build/fuzz-work/$t.log"
  echo "fuzz $t: $build/tests/fuzz_$t ${limit[*]} -timeout=10 -rss_limit_mb=2048 ${dict[*]} $work tests/fuzz/corpus/$t"
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     "$build/tests/fuzz_$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$art/" "${dict[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz $t: $execs executions, no crash ($(grep -c . <(ls "$work")) corpus files)"
  else
    status=1
    echo "fuzz $t: FAILED - the last lines of $log:"
    tail -40 "$log"
    echo "fuzz $t: reproduce with $build/tests/fuzz_$t $art/<crash-file>"
  fi
done
exit $status
