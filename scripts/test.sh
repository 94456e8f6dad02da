#!/usr/bin/env bash
# The test suite: installs dependencies, builds, and runs every test with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh
cd build
ctest --output-on-failure -j "${SKILLGRID_JOBS:-$(nproc)}" "$@"
