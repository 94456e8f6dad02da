#!/usr/bin/env bash
# The GPU checks, in one command for a session lent a CUDA machine (the `device` tool):
#   here:   bash scripts/device_bundle.sh
#   there:  run(command="bash scripts/device_check.sh", carry=[".device"], timeout_s=600)
# Builds skillgrid against that machine's PyTorch LibTorch (2.x) into build-cuda/ (viewer and
# micro-benchmarks off), runs every *_CUDA test, then `bench train --device cuda` for
# bow_endpool_res (fp32, bf16; bf16 also with 256 and 1024 envs) and the small model. Logs go to $OUT (else build-cuda/out).
# SKILLGRID_DEVICE_STEPS=build,tests,bench chooses steps (default: all three);
# SKILLGRID_TORCH_PREFIX overrides the LibTorch CMake prefix taken from python3.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
deps="$root/.device"
gtest="$root/build-cuda/gtest"  # built there, with that machine's compiler
out="${OUT:-$root/build-cuda/out}"
steps="${SKILLGRID_DEVICE_STEPS:-build,tests,bench}"
mkdir -p "$out"
if [ ! -d "$deps/prefix" ]; then
  echo "device_check: $deps is missing: run scripts/device_bundle.sh first and carry .device" >&2
  exit 2
fi
jobs="$(nproc)"
export CPATH="$deps/prefix/include${CPATH:+:$CPATH}"
export LIBRARY_PATH="$deps/prefix/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

if [[ "$steps" == *build* ]]; then
  torch_prefix="${SKILLGRID_TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}" || {
    echo "device_check: python3 cannot import torch" >&2
    exit 2
  }
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tee "$out/torch.txt" || true
  if [ ! -f "$gtest/lib/cmake/GTest/GTestConfig.cmake" ] && [ ! -f "$gtest/lib64/cmake/GTest/GTestConfig.cmake" ]; then
    cmake -S "$deps/googletest" -B "$root/build-cuda/gtest-build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$gtest" \
      -DBUILD_GMOCK=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$out/gtest_build.log" 2>&1 &&
      cmake --build "$root/build-cuda/gtest-build" -j "$jobs" --target install >>"$out/gtest_build.log" 2>&1 || {
      tail -n 30 "$out/gtest_build.log"
      echo "device_check: GoogleTest build FAILED" >&2
      exit 1
    }
  fi
  start=$(date +%s)
  if ! cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DSKILLGRID_WITH_VIEWER=OFF -DSKILLGRID_BUILD_BENCH=OFF \
      -DCMAKE_PREFIX_PATH="$gtest;$deps/prefix;$torch_prefix" >"$out/configure.log" 2>&1; then
    tail -n 40 "$out/configure.log"
    echo "device_check: configure FAILED" >&2
    exit 1
  fi
  if ! cmake --build build-cuda -j "$jobs" >"$out/build.log" 2>&1; then
    grep -m 40 -E "error|Error" "$out/build.log"
    echo "device_check: build FAILED (full log: $out/build.log)" >&2
    exit 1
  fi
  echo "device_check: built in $(($(date +%s) - start)) s"
fi

status=0
if [[ "$steps" == *tests* ]]; then
  (cd build-cuda && ctest -R _CUDA --output-on-failure --timeout 300 -j 4) 2>&1 | tee "$out/cuda_tests.log"
  status=${PIPESTATUS[0]}
fi

if [[ "$steps" == *bench* ]]; then
  bench() {
    echo "== skillgrid bench train $*" | tee -a "$out/bench.txt"
    build-cuda/bin/skillgrid bench train --device cuda "$@" 2>&1 | tee -a "$out/bench.txt" || status=1
  }
  bench --model bow_endpool_res --updates 3
  bench --model bow_endpool_res --precision bf16 --updates 3
  bench --model small --updates 8
  # How throughput scales with more envs per rollout (each update then has more minibatches of 1280).
  bench --model bow_endpool_res --precision bf16 --updates 2 --num-envs 256
  bench --model bow_endpool_res --precision bf16 --updates 2 --num-envs 1024
fi
exit "$status"
