#!/usr/bin/env bash
# Kernel-size ablation: the size of the local neighbourhood PermaKey predicts from, i.e. the LSPN
# patch size p (PermaKeyConfig.patch_size; p x p cells predicted from their 8 neighbours; the
# paper uses p = 2), on Space Invaders. evaluate.py draws
# ablation_spaceinvaders_permakey_patch_size.png (it also recognises runs that differ only in
# encoder_kernels).
#
# Compute: the LSPN input width is 8 p^2 C, so its first Dense layer grows with p^2
# (p = 1: ~1/4, p = 3: ~2.25x the p = 2 cost of that layer). 3 values x 5 seeds = 15 runs.
source "$(dirname "$0")/common.sh"
runs=()
for p in ${PATCH_SIZES:-1 2 3}; do
  for seed in $SEEDS; do
    train spaceinvaders permakey none "${PRESET}_p${p}_seed$seed" --patch-size "$p" --seed "$seed"
    runs+=("$RUN")
  done
done
evaluate ablation_kernel_size "${runs[@]}"
