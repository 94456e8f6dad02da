#!/usr/bin/env bash
# Installs the Debian 12 packages skillgrid builds against. Idempotent: packages already
# present are skipped, and nothing is printed when everything is there.
set -euo pipefail

# Core: compiler toolchain, engine and CLI dependencies, tests and benchmarks.
PACKAGES=(
  build-essential cmake ccache pkg-config
  nlohmann-json3-dev libcli11-dev libpng-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libeigen3-dev
  libtorch-dev libopenblas0-pthread libopenblas-dev
)
# Optional: the SFML viewer and its headless test (SKILLGRID_SETUP_VIEWER=0 skips them).
if [ "${SKILLGRID_SETUP_VIEWER:-1}" = "1" ]; then
  PACKAGES+=(libsfml-dev xvfb xauth)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
