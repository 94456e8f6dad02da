#!/usr/bin/env bash
# Packs what scripts/device_check.sh needs on the GPU machine the `device` tool lends, which has
# CUDA, CMake and PyTorch's LibTorch but can install nothing: GoogleTest's sources, the
# header-only libraries (nlohmann/json, CLI11, Eigen) and static libpng/zlib, copied from this
# machine's Debian packages into .device/ (git-ignored). Pass `carry: [".device"]` to the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
dest=.device/prefix
rm -rf .device
mkdir -p "$dest/include" "$dest/lib" "$dest/share/cmake" "$dest/share/eigen3"
cp -r /usr/src/googletest .device/googletest
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/eigen3 "$dest/include/"
cp -r /usr/share/cmake/nlohmann_json "$dest/share/cmake/"
cp -r /usr/share/eigen3/cmake "$dest/share/eigen3/"
cp /usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h /usr/include/zlib.h /usr/include/zconf.h \
  "$dest/include/"
lib=/usr/lib/x86_64-linux-gnu
cp "$lib/libpng16.a" "$dest/lib/libpng.a"
cp "$lib/libz.a" "$dest/lib/libz.a"
echo "device_bundle: .device/ holds $(du -sh .device | cut -f1) (carry it to the device machine)"
