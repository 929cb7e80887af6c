#!/usr/bin/env bash
# K ablation (paper appendix): PermaKey on Frostbite with K = 15, 20 (the authors' K), 25.
# evaluate.py draws ablation_frostbite_permakey_num_keypoints.png (F1 vs K, seeds averaged, beside
# the fixed-layout and random baselines of the same K).
#
# Compute: 3 values x 5 seeds = 15 PermaKey runs (~3e17 FLOP each at the paper preset).
source "$(dirname "$0")/common.sh"
runs=()
for k in ${KS:-15 20 25}; do
  for seed in $SEEDS; do
    train frostbite permakey none "${PRESET}_k${k}_seed$seed" --num-keypoints "$k" --seed "$seed"
    runs+=("$RUN")
  done
done
evaluate ablation_keypoints "${runs[@]}"
