#!/usr/bin/env bash
# Kernel-size ablation (the paper's section 4.3: a first encoder kernel of 4 works best on 84x84
# frames; larger kernels and strides of 2 or more give coarser keypoints): PermaKey on Space
# Invaders with the encoder's first kernel 3, 4 (the default), 6, and 4 with stride 2, each over
# SEEDS (default 0 1) with experiments/over_seeds.py (quick preset by default). Reports per
# setting and seed under docs/results/<date>_<machine>/spaceinvaders/permakey-kernel<k>[s2]/
# (kernel 4 with the quick preset: .../permakey-layers0/, shared with ablation_layers.sh);
# evaluate.py over all runs draws the ablation figure (F1 against the encoder's kernels) into
# .../spaceinvaders/ablation-kernel-size/.
#
# Compute: the first layer's convolution is a small part of a step; stride 2 quarters layer 0's
# map and with it the cost of its LSPN. 4 settings x 2 seeds = 8 runs.
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-"0 1"}
source "$(dirname "$0")/common.sh"
all=()
for kernel in ${KERNELS:-3 4 6}; do
  if [[ "$kernel" == 4 && "$PRESET" == quick ]]; then
    # Kernel 4 on layer 0 is the quick preset itself, the layer ablation's {0}: the same runs
    # (and reports) serve both figures, trained once.
    over_seeds spaceinvaders layers0 "lsp_layers=0"
  else
    over_seeds spaceinvaders "kernel$kernel" "encoder_kernels=$kernel,3,3,3"
  fi
  all+=("${RUNS[@]}")
done
if [[ "${STRIDE2:-1}" == 1 ]]; then
  over_seeds spaceinvaders kernel4s2 "encoder_kernels=4,3,3,3" "encoder_strides=2,2,2,1"
  all+=("${RUNS[@]}")
fi
ablation_figure kernel-size spaceinvaders "${all[@]}"
