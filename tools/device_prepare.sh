#!/usr/bin/env bash
# Here (no GPU): a Release build of kbench and the binaries a GPU run needs, into devbin/
# (kbench, kbcuda_worker, test_chain, test_vulkan_selftest, lt_rotate_check, copy_rotate_check), and the
# libraries the lent machine lacks (Vulkan loader, glvnd, Debian's libbenchmark) into .gl/.
# With KB_OLD_REV=<commit>, also devold/: that commit's kbench, worker and shape tables,
# for comparing output hashes across a change on the same GPU.
# Then the lent machine (docs/DEVICE_RUNS.md): carry .gl devbin [devold], run
# tools/h200_runs.sh STEP... (or tools/device_run.sh <kbench args>).
set -euo pipefail
cd "$(dirname "$0")/.."
for d in /.gl/ /devbin/ /devold/ /build-device/; do
  grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude
done
if [ ! -e .gl/libbenchmark.so.1debian ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2)
  cp /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian .gl/
fi
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DKB_PYTHON="$PWD/.venv/bin/python3" >/dev/null
cmake --build build-device --target kbench kbcuda_worker test_chain test_vulkan_selftest lt_rotate_check copy_rotate_check \
  test_cublaslt_probe test_nvrtc_compile
# devbin/'s files anew; its cubin cache kept (a changed source or option misses it anyway)
mkdir -p devbin && find devbin -maxdepth 1 -type f -delete
cp build-device/kbench build-device/kbcuda_worker build-device/tests/test_chain build-device/tests/test_vulkan_selftest \
   build-device/lt_rotate_check build-device/copy_rotate_check build-device/tests/test_cublaslt_probe devbin/
# the cubins NVRTC would make on an sm_90 device, so the run spends no time compiling
# (used when the device's NVRTC is the same version: the cache key holds it)
build-device/tests/test_nvrtc_compile "$PWD/devbin/nvrtc-cache/kbench" >/dev/null
# PREP_POINTS="FILE..." (OP:NAME a line, tools/points/): the tuned points a planned step
# sweeps, compiled here too
if [ -n "${PREP_POINTS:-}" ]; then
  points=()
  while read -r p; do [ -n "$p" ] && points+=(--point "$p"); done < <(cat $PREP_POINTS)
  build-device/tests/test_nvrtc_compile "$PWD/devbin/nvrtc-cache/kbench" "${points[@]}" | tail -1
fi
# only the sm_90 cubins travel (the carry's 64 MiB): an ELF's e_flags hold the SM in bits 8-15
python3 - devbin/nvrtc-cache/kbench <<'EOF'
import os, struct, sys
for f in os.scandir(sys.argv[1]):
    with open(f.path, 'rb') as h:
        head = h.read(0x34)
    if head[:4] == b'\x7fELF' and (struct.unpack_from('<I', head, 0x30)[0] >> 8) & 0xff != 90:
        os.remove(f.path)
EOF
if [ -n "${KB_OLD_REV:-}" ]; then
  tmp=$(mktemp -d)
  git worktree add -q --detach "$tmp/old" "$KB_OLD_REV"
  cmake -S "$tmp/old" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$tmp/build" --target kbench kbcuda_worker
  rm -rf devold && mkdir -p devold/shapes
  cp "$tmp/build/kbench" "$tmp/build/kbcuda_worker" devold/
  cp "$tmp/old/shapes/"*.tsv devold/shapes/
  git worktree remove --force "$tmp/old"
  rm -rf "$tmp"
fi
du -sh devbin ${KB_OLD_REV:+devold} .gl
