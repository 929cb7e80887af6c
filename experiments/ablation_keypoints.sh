#!/usr/bin/env bash
# K ablation (the paper's appendix, its Figure 5): PermaKey on Frostbite with K = 15, 20 (the
# authors' K), 25, each over SEEDS (default 0 1) with experiments/over_seeds.py (quick preset by
# default): reports per setting and seed under docs/results/<date>_<machine>/frostbite/permakey-k<K>/,
# then evaluate.py over all runs draws ablation_frostbite_permakey_num_keypoints.png (F1 against
# K, seeds averaged, beside the fixed-layout and random baselines of the same K) into
# .../frostbite/ablation-keypoints/.
#
# Compute: 3 values x 2 seeds = 6 PermaKey runs (quick preset: 7-9 minutes each on a 2-core Zen 4,
# 30-45 on an AVX2-only machine; K barely changes the cost).
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-"0 1"}
source "$(dirname "$0")/common.sh"
all=()
for k in ${KS:-15 20 25}; do
  over_seeds frostbite "k$k" "num_keypoints=$k"
  all+=("${RUNS[@]}")
done
ablation_figure keypoints frostbite "${all[@]}"
