#!/usr/bin/env bash
# The GPU checks, in one command for a session lent a CUDA machine (the `device` tool):
#   here:   bash scripts/device_bundle.sh
#   there:  run(command="bash scripts/device_check.sh", carry=[".device"], timeout_s=600)
# Builds the CLI and the test binaries against that machine's PyTorch LibTorch (2.x) into
# build-cuda/ (viewer and micro-benchmarks off), runs `bench train --device cuda --phases` for
# bow_endpool_res (64 envs in fp32 and bf16; 4,096 and 8,192 envs with minibatches grown with
# them), then every *_CUDA test. Logs go to $OUT (else build-cuda/out); the last lines summarise
# the benchmarks. About 200 s on an H200 host with 16 cores (96 s of it the build).
# SKILLGRID_DEVICE_STEPS=build,tests,bench chooses steps (default: all three);
# SKILLGRID_TORCH_PREFIX overrides the LibTorch CMake prefix taken from python3;
# SKILLGRID_DEVICE_TEST_S caps the tests' wall time (default 240 s).
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
  # Ninja where the machine has it (faster on many cores); either way the build keeps going
  # past a failing file, so one call shows every compile error.
  generator=() keep_going=(-k)
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja) keep_going=(-k 0); fi
  if ! cmake -S . -B build-cuda "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSKILLGRID_WITH_VIEWER=OFF \
      -DSKILLGRID_BUILD_BENCH=OFF -DCMAKE_PREFIX_PATH="$gtest;$deps/prefix;$torch_prefix" >"$out/configure.log" 2>&1; then
    tail -n 40 "$out/configure.log"
    echo "device_check: configure FAILED" >&2
    exit 1
  fi
  # Only what the checks run: the CLI and the test binaries that hold *_CUDA suites.
  if ! cmake --build build-cuda -j "$jobs" --target skillgrid skills_tests agents_tests training_tests \
      -- "${keep_going[@]}" >"$out/build.log" 2>&1; then
    grep -E -A4 "error:|Error [0-9]|undefined reference" "$out/build.log" | head -n 150
    echo "device_check: build FAILED (full log: $out/build.log)" >&2
    exit 1
  fi
  echo "device_check: built in $(($(date +%s) - start)) s"
fi

status=0
# Benchmarks first: they are the short part, and the tests may run to their timeouts.
if [[ "$steps" == *bench* ]]; then
  bench() {
    echo "== skillgrid bench train $*" | tee -a "$out/bench.txt"
    timeout 120 build-cuda/bin/skillgrid bench train --device cuda "$@" 2>&1 | tee -a "$out/bench.txt" || status=1
  }
  # BabyAI's scale (64 envs, minibatches of 1280): bound by the host issuing small operators.
  bench --model bow_endpool_res --updates 2 --phases
  bench --model bow_endpool_res --precision bf16 --updates 2 --phases
  # GPU scale: many envs per rollout, minibatches grown with them (BabyAI's two minibatches per
  # epoch), so each launch carries more frames.
  bench --model bow_endpool_res --precision bf16 --updates 3 --num-envs 4096 --batch-size 81920 --phases
  bench --model bow_endpool_res --precision bf16 --updates 2 --num-envs 8192 --batch-size 163840 --phases
  bench --model bow_endpool_res --updates 2 --num-envs 4096 --batch-size 81920 --phases
fi
if [[ "$steps" == *tests* ]]; then
  # The whole suite in at most ~4 minutes, so one lease holds build, benchmarks and tests.
  (cd build-cuda && timeout ${SKILLGRID_DEVICE_TEST_S:-240} ctest -R _CUDA --output-on-failure --timeout 200 -j 6) 2>&1 | tee "$out/cuda_tests.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ -f "$out/bench.txt" ]; then
  echo "== summary"
  grep -E "^== |^frames_per_sec|^rollout_share|^phase |^(rollout|update)\.[a-z]+ " "$out/bench.txt"
fi

exit "$status"
