#!/usr/bin/env bash
# There (on the lent GPU machine, from the repo root): unpack the carried
# libraries, then run build-device/kbench with the given arguments, writing
# a CSV (kbench-$KB_TAG.csv when
# KB_TAG is set, so one device call can run several; KB_WRAP is a command put
# in front of kbench, e.g. compute-sanitizer). Prints the device first.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export LD_LIBRARY_PATH=$PWD/.gl:${LD_LIBRARY_PATH:-}
# NVIDIA's Vulkan ICD (glvnd) when the loader does not find it by itself
[ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
out=${OUT:-/tmp/kbench-out}
mkdir -p "$out"
name=kbench${KB_TAG:+-$KB_TAG}
# at most 8 files come back from a device call: one CSV per run, one shared log
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee -a "$out/log.txt"
echo "+ ${KB_WRAP:-} kbench $* --csv $name.csv" | tee -a "$out/log.txt"
${KB_WRAP:-} build-device/kbench "$@" --csv "$out/$name.csv" 2>&1 | tee -a "$out/log.txt"
exit "${PIPESTATUS[0]}"
