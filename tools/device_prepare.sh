#!/usr/bin/env bash
# Here (no GPU): build Release kbench (+ kbcuda_worker, the tests) into build-device/ and fetch the libraries the
# lent H100 machine lacks (Vulkan loader, glvnd, Debian's libbenchmark) into .gl/.
# Then hand the lent machine (docs/DEVICE_RUNS.md):
#   command: tools/device_run.sh <kbench args...>
#   carry:   [".gl", "build-device"]
# It returns $OUT/kbench[-$KB_TAG].{csv,jsonl,log}.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
if [ ! -e .gl/libbenchmark.so.1debian ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2)
  cp /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .gl/
fi
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-device
