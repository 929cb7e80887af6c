#!/usr/bin/env bash
# Main comparison (paper Figure 2 / Table 1 games): PermaKey vs Transporter on clean frames,
# each game with the authors' K (tfds_atari/games.py), 5 seeds, then evaluate.py side by side.
#
# Compute (docs/BACKGROUND.md section 9): PermaKey forward ~11.8 GFLOP/frame, a training step ~3x that,
# so 85,000 frames x up to 100 epochs = 8.5M frames ~ 3e17 FLOP per PermaKey run (early stopping
# may end sooner). Time = 8.5M frames / throughput: ~18 days at the ~5.5 frames/s a 2-core CPU
# reaches in float32, ~2.4 hours at 1,000 frames/s. Plus 5,000 validation frames per epoch.
# 7 games x 2 models x 5 seeds = 70 runs: a GPU job. Try PRESET=quick SEEDS=0 first.
source "$(dirname "$0")/common.sh"
GAMES=${GAMES:-"mspacman seaquest battlezone frostbite enduro montezumarevenge spaceinvaders"}
for game in $GAMES; do
  runs=()
  for seed in $SEEDS; do
    for model in permakey transporter; do
      train "$game" "$model" none "${PRESET}_seed$seed" --seed "$seed"
      runs+=("$RUN")
    done
  done
  evaluate "main/$game" "${runs[@]}"
done
