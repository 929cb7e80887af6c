#!/usr/bin/env bash
# Seed study (paper Figure 3): 5 PermaKey seeds on one game; evaluate.py overlays their keypoints
# on one frame (figure3_<game>_permakey_seeds.png) and reports each seed's metrics.
#
# Compute: 5 PermaKey runs (~3e17 FLOP each at the paper preset).
source "$(dirname "$0")/common.sh"
GAME=${GAME:-spaceinvaders}
runs=()
for seed in $SEEDS; do
  train "$GAME" permakey none "${PRESET}_seed$seed" --seed "$seed"
  runs+=("$RUN")
done
evaluate "seeds/$GAME" "${runs[@]}"
