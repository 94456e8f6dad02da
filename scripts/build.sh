#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds skillgrid into build/ (Release).
# Extra arguments are passed to CMake's configure step, e.g. -DSKILLGRID_WITH_VIEWER=OFF.
# The compiler's output goes to build/build.log; its tail is printed if the build fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
jobs="${SKILLGRID_JOBS:-$(nproc)}"
if [ ! -f build/CMakeCache.txt ] || [ $# -gt 0 ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
echo "build: compiling with $jobs jobs (log: build/build.log)"
if ! cmake --build build -j "$jobs" >build/build.log 2>&1; then
  tail -n 60 build/build.log
  echo "build: FAILED (full log: build/build.log)"
  exit 1
fi
echo "build: done (build/bin/skillgrid)"
