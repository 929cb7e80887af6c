#!/usr/bin/env bash
# Layer ablation (paper appendix): PermaKey on Space Invaders (K = 25) with local spatial
# prediction on encoder layers {0}, {0,1} (paper default), {2,3}, {0,1,2,3}.
# evaluate.py draws ablation_spaceinvaders_permakey_lsp_layers.png.
#
# Compute: the LSPN MLPs dominate (layer 0: 6.1, layer 1: 4.8 GFLOP/frame forward, docs/BACKGROUND.md
# section 9); layers 2 and 3 (21x21 maps, 11x11 cells) cost less, {0,1,2,3} the most.
# 4 settings x 5 seeds = 20 runs.
source "$(dirname "$0")/common.sh"
runs=()
for layers in ${LAYER_SETS:-0 0,1 2,3 0,1,2,3}; do
  for seed in $SEEDS; do
    train spaceinvaders permakey none "${PRESET}_layers${layers//,/}_seed$seed" --layers "$layers" \
      --seed "$seed"
    runs+=("$RUN")
  done
done
evaluate ablation_layers "${runs[@]}"
