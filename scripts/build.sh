#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds skillgrid into build/ (Release).
# Extra arguments are passed to CMake's configure step, e.g. -DSKILLGRID_WITH_VIEWER=OFF.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
jobs="${SKILLGRID_JOBS:-$(nproc)}"
if [ ! -f build/CMakeCache.txt ] || [ $# -gt 0 ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
cmake --build build -j "$jobs" 2>&1 | grep -v -E '^\[ *[0-9]+%\] (Building|Linking|Built)|^Consolidate|^Scanning|^-- ' || true
test "${PIPESTATUS[0]}" -eq 0
