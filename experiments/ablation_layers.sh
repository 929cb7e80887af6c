#!/usr/bin/env bash
# Layer ablation (the paper's appendix, its Figure 6): PermaKey on Space Invaders (K = 25) with
# local spatial prediction on encoder layers {0}, {0,1} (the paper's default), {2,3}, {0,1,2,3},
# each over SEEDS (default 0 1) with experiments/over_seeds.py. The quick preset (the default
# here) has narrower encoder widths (16, 32, 32, 64) and LSPN widths (64, 32, 32) than the paper
# and predicts on layer 0 alone, so {0} is the quick preset itself. Reports per setting and seed
# under docs/results/<date>_<machine>/spaceinvaders/permakey-layers<L>/; evaluate.py over all runs
# draws ablation_spaceinvaders_permakey_lsp_layers.png into .../spaceinvaders/ablation-layers/.
#
# Compute: each LSPN costs about its layer's cells x its input width; layer 1 (42x42 cells at
# stride 2) is cheaper than layer 0 (84x84), layers 2 and 3 (21x21) cheaper still, so {0,1} and
# {0,1,2,3} cost about 1.3-1.5x the quick preset's step. 4 settings x 2 seeds = 8 runs.
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-"0 1"}
source "$(dirname "$0")/common.sh"
all=()
for layers in ${LAYER_SETS:-0 0,1 2,3 0,1,2,3}; do
  over_seeds spaceinvaders "layers${layers//,/}" "lsp_layers=$layers"
  all+=("${RUNS[@]}")
done
ablation_figure layers spaceinvaders "${all[@]}"
