#!/usr/bin/env bash
# Regenerate the model card's tables (held-out test split of the offline face set, CPU).
#   results/test_split/       the authors' protocol (LR and HR by bicubic from the master)
#   results/test_split_jpeg40 the same faces with the LR saved as JPEG at quality 40
#   results/restore*.md       whole photos /4 restored (benchmarks/bench_restore.py), clean, JPEG q75 and q40
# The earlier releases' ARASFSR and LTE files are compared too: 0.2 (format 2) and 0.1 (format 1),
# taken from the git history into runs/previous/ once. Usage: bash scripts/evaluate_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f data/faces/manifest.json ] || python -m arasfsr.data.offline --out data/faces
mkdir -p runs/previous
old=()
for release in 0.2:a75dfcf 0.1:ea755a1; do
  for family in arasfsr lte; do
    file="runs/previous/${family}-${release%%:*}.safetensors"
    [ -s "$file" ] || git show "${release#*:}:weights/${family}_small.safetensors" > "$file"
    old+=("$file")
  done
done
python -m arasfsr evaluate --weights weights/arasfsr_small.safetensors weights/lte_small.safetensors \
  weights/liif_small.safetensors weights/arasfsr-no-lfe_small.safetensors weights/arasfsr-no-gcm_small.safetensors \
  "${old[@]}" --data data/faces --split test --input-sizes 16,32,64 --scales 1.5,2,3,4,8 --out results/test_split
python -m arasfsr evaluate --weights weights/arasfsr_small.safetensors weights/arasfsr-real_small.safetensors \
  --data data/faces --split test --input-sizes 16,32 --scales 2,4,8 --degradation jpeg40 --out results/test_split_jpeg40
python -m arasfsr evaluate --weights weights/arasfsr_small.safetensors weights/arasfsr-real_small.safetensors \
  --data data/faces --split test --input-sizes 16,32 --scales 2,4,8 --out results/test_split_real_clean
for weights in arasfsr_small arasfsr-real_small; do
  python benchmarks/bench_restore.py --weights "weights/$weights.safetensors" --methods native \
    --markdown "results/restore_${weights}.md"
  for quality in 75 40; do
    python benchmarks/bench_restore.py --weights "weights/$weights.safetensors" --methods native --jpeg "$quality" \
      --markdown "results/restore_${weights}_jpeg${quality}.md"
  done
done

# Faces from elsewhere (release 0.4): the test split of data/ood (python -m arasfsr.data.ood; faces from
# other registry packages than the training set), aligned, with clean, JPEG q75 and q40 LR; the studio's
# test split under the real-photo transform; and the whole photos of data/ood /4 (clean, q90, q75, q40)
# with the default (auto: weights chosen per input by its damage) and each shipped ARASFSR file alone.
[ -f data/ood/manifest.json ] || python -m arasfsr.data.ood --out data/ood
[ -s runs/previous/arasfsr-0.3.safetensors ] || git show "246de60:weights/arasfsr_small.safetensors" > runs/previous/arasfsr-0.3.safetensors
gen=(weights/arasfsr_small.safetensors weights/arasfsr-real_small.safetensors weights/lte_small.safetensors
     runs/previous/arasfsr-0.3.safetensors)
for kind in bicubic jpeg75 jpeg40; do
  python -m arasfsr evaluate --weights "${gen[@]}" --data data/ood --split test --input-sizes 16,32 --scales 2,4,8 \
    --degradation "$kind" --out "results/ood_test_${kind}"
done
python -m arasfsr evaluate --weights "${gen[@]}" --data data/faces --split test --transform real \
  --input-sizes 16,32 --scales 2,4,8 --out results/test_split_real_photo
for weights in auto weights/arasfsr_small.safetensors weights/arasfsr-real_small.safetensors; do
  tag=$(basename "$weights" .safetensors)
  for quality in 0 90 75 40; do
    python benchmarks/bench_restore.py --weights "$weights" --methods native --ood data/ood --jpeg "$quality" \
      --markdown "results/restore_ood_${tag}_q${quality}.md"
  done
done

# Release 0.5: natural photographs (python -m arasfsr.data.natural: Debian wallpaper photographs, split
# by photographer) for the natural-photo model, the heavy-JPEG weights on the OOD faces, and whole photos
# with the background drawn by the natural-photo model (the default of `restore`), against bicubic.
[ -f data/natural/manifest.json ] || python -m arasfsr.data.natural --out data/natural
# Issue 18: the natural file was replaced (natural-more); the 0.5 file, from the git history, beside it.
[ -s runs/previous/natural-0.5.safetensors ] ||
  git show 9b426e8:weights/natural_small.safetensors > runs/previous/natural-0.5.safetensors
python -m arasfsr evaluate --weights weights/natural_small.safetensors runs/previous/natural-0.5.safetensors \
  weights/lte_small.safetensors --data data/natural --split test --input-sizes 128,256 --scales 2,4 \
  --out results/natural_test
python -m arasfsr evaluate --weights lte arasfsr --data data/natural --split test --input-sizes 128 --scales 4 \
  --out results/natural_test_face_weights
[ -s runs/previous/natural-fast-0.7.safetensors ] ||
  git show 512bf4c:weights/natural-fast_small.safetensors > runs/previous/natural-fast-0.7.safetensors
python -m arasfsr evaluate --weights weights/natural-fast_small.safetensors runs/previous/natural-fast-0.7.safetensors \
  --data data/natural --split test --input-sizes 128 --scales 2,4 --out results/natural_fast_test
python -m arasfsr evaluate --weights weights/arasfsr-real_small.safetensors weights/arasfsr-heavy_small.safetensors \
  --data data/ood --split test --input-sizes 16,32 --scales 2,4,8 --degradation jpeg40 --out results/ood_test_jpeg40_heavy
for quality in 0 75 40; do
  python benchmarks/bench_restore.py --weights auto --background natural --methods native --ood data/ood \
    --jpeg "$quality" --markdown "results/restore_ood_auto_natural_q${quality}.md"
done
python benchmarks/bench_memory.py > results/memory.md
