#!/usr/bin/env bash
# Times skillgrid's PPO loop against the Python reference loop (torch_ac_ppo.py) on this machine,
# interleaved, and prints each run's frames/s and the ratio of the medians.
#
#   bash bench/reference/compare.sh [small|bow_endpool_res] [ROUNDS] [fp32|bf16]
#
# Defaults: small, 3 rounds, fp32. The last argument is skillgrid's --precision (bf16: mixed
# precision, bow_endpool_res only); the reference always runs fp32, as torch-ac users run it. Installs Debian's python3-torch if it is missing (apt-get; nothing
# is downloaded from elsewhere) and builds skillgrid first. The reference runs with the faster of
# one or two torch threads measured in the first round, OpenBLAS single-threaded beside them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
model="${1:-small}"
rounds="${2:-3}"
precision="${3:-fp32}"
case "$model" in
  small) updates=20; ref_updates=3 ;;
  bow_endpool_res) updates=2; ref_updates=1 ;;
  *) echo "compare.sh: unknown model '$model' (valid: small, bow_endpool_res)" >&2; exit 2 ;;
esac
if [ "$precision" != fp32 ] && [ "$precision" != bf16 ]; then
  echo "compare.sh: precision must be fp32 or bf16, got '$precision'" >&2; exit 2
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare.sh: ROUNDS must be a positive integer, got '$rounds'" >&2; exit 2
fi

if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "compare.sh: installing Debian's python3-torch"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch >/dev/null
fi
bash scripts/build.sh >/dev/null

fps() { sed -n 's/^frames_per_sec: //p'; }
ref() { OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference/torch_ac_ppo.py --model "$model" \
          --updates "$ref_updates" --threads "$1" | fps; }
ours=(); theirs=()
threads=1
for ((r = 1; r <= rounds; ++r)); do
  o=$(build/bin/skillgrid bench train --model "$model" --precision "$precision" --updates "$updates" | fps)
  if [ "$r" -eq 1 ]; then
    one=$(ref 1); two=$(ref 2)
    t=$(awk -v a="$one" -v b="$two" 'BEGIN { print (b > a) ? b : a }')
    threads=$(awk -v a="$one" -v b="$two" 'BEGIN { print (b > a) ? 2 : 1 }')
    echo "round 1: skillgrid $o frames/s; reference $one (1 torch thread), $two (2 threads)"
  else
    t=$(ref "$threads")
    echo "round $r: skillgrid $o frames/s; reference $t ($threads torch thread(s))"
  fi
  ours+=("$o"); theirs+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mo=$(median "${ours[@]}"); mt=$(median "${theirs[@]}")
echo "model: $model"
echo "precision: skillgrid $precision, reference fp32"
echo "skillgrid_frames_per_sec: $mo"
echo "reference_frames_per_sec: $mt (free environments: an upper bound on the Python stack)"
awk -v a="$mo" -v b="$mt" 'BEGIN { printf "speedup: %.1fx\n", a / b }'
