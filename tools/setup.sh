#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine with the CUDA toolkit: installs the Debian
# packages that are missing, makes .venv with the Python test oracles, then
# configures and builds kbench into build/. Safe to run again.
#   KB_WERROR=1      build with -Werror (CI)
#   KB_BUILD_DIR     build folder (default build)
#   KB_CMAKE_ARGS    more CMake arguments, e.g. "-DKB_BACKEND_CUDA=OFF"
#   KB_FUZZ_TOOLS=1  also install clang and its runtime libraries (libFuzzer), which
#                    the sanitizer and fuzz stages of .ci/run use
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, and why each is here (README.md "Dependencies").
pkgs=(cmake ninja-build gcc g++ git python3 python3-venv
      libbenchmark-dev                 # timing: Google Benchmark behind bench/gbench_shim.cc
      libvulkan-dev glslang-tools spirv-tools   # vulkan backend: loader, GLSL -> SPIR-V, validation
      mesa-vulkan-drivers)             # lavapipe: real Vulkan on a machine with no GPU
if [ "${KB_FUZZ_TOOLS:-0}" = 1 ]; then
  pkgs+=(clang libclang-rt-dev)        # libFuzzer + ASan/UBSan runtimes (tests/fuzz/run_fuzz.sh)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CUDA toolkit (nvcc, NVRTC, cuBLASLt) is assumed installed; CMake finds it on
# PATH or in /usr/local/cuda. Without it the cuda/cublaslt backends report "not built".
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi

# Python oracles for the tests (numpy, gguf, ml_dtypes), pinned in tools/requirements.txt.
# Debian's own python3 (python3-venv above) makes the venv.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if [ ! -x .venv/bin/python3 ] || ! .venv/bin/python3 -c "import numpy, gguf, ml_dtypes" 2>/dev/null; then
  "$py" -m venv .venv
  .venv/bin/python3 -m pip install -q --disable-pip-version-check -r tools/requirements.txt
fi

build=${KB_BUILD_DIR:-build}
werror=OFF
[ "${KB_WERROR:-0}" = 1 ] && werror=ON
# shellcheck disable=SC2086 # KB_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKB_WERROR=$werror \
      -DKB_PYTHON="$PWD/.venv/bin/python3" ${KB_CMAKE_ARGS:-} >/dev/null
cmake --build "$build"
