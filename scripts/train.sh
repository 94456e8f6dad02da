#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs `skillgrid train` with the given flags
# (none: the default eight-level Polytropon suite).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh
exec build/bin/skillgrid train "$@"
