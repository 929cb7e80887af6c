#!/usr/bin/env bash
# Seed study (the paper's appendix B.1.1, its Figure 3: "stability over 5 random seeds on
# Enduro"): PermaKey on GAME (default enduro) over SEEDS (default 0 1 2 3 4) with
# experiments/over_seeds.py (quick preset by default). Reports per seed under
# docs/results/<date>_<machine>/<game>/permakey-seeds/seed<S>/, and the seeds' agreement (how
# close their keypoints are on the same frames, against random and fixed layouts) with the
# overlay of all seeds' keypoints (Figure 3) in .../permakey-seeds/agreement/.
#
# Compute: 5 PermaKey runs (quick preset: 7-9 minutes each on a 2-core Zen 4, 30-45 on an
# AVX2-only machine).
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-"0 1 2 3 4"}
source "$(dirname "$0")/common.sh"
over_seeds "${GAME:-enduro}" seeds
