#!/usr/bin/env bash
# The CPU-sized check behind docs/notes/one-seed-results.md: quick-preset PermaKey and Transporter on Space
# Invaders, trained clean and with vertical bars, each evaluated clean and under every noise type.
#
# Compute: each quick run is ~13 minutes on an idle 2-core CPU (6,000 frames x 6 epochs,
# mixed_bfloat16); evaluation of 512 test frames x 4 noise types takes about a minute per run.
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-0}
source "$(dirname "$0")/common.sh"
runs=()
for noise in none vertical; do
  for model in permakey transporter; do
    train spaceinvaders "$model" "$noise" "quick_$noise" --seed 0
    runs+=("$RUN")
  done
done
evaluate quick_check "${runs[@]}"
