#!/usr/bin/env bash
# Noisy Atari (paper section 4.3): both models trained on frames with coloured distractor bars
# (5 px, (128, 0, 255), overwriting; horizontal, vertical or both), evaluated clean and noisy.
# The claim to check: PermaKey spends fewer keypoints on the bars (evaluate.py's bar_share).
#
# Compute: as main_comparison.sh per run; 3 noise types x games x 2 models x seeds runs.
source "$(dirname "$0")/common.sh"
GAMES=${GAMES:-"spaceinvaders mspacman frostbite"}
NOISES=${NOISES:-"horizontal vertical both"}
for game in $GAMES; do
  for noise in $NOISES; do
    runs=()
    for seed in $SEEDS; do
      for model in permakey transporter; do
        train "$game" "$model" "$noise" "${PRESET}_${noise}_seed$seed" --seed "$seed"
        runs+=("$RUN")
      done
    done
    evaluate "noisy/$game/$noise" "${runs[@]}"
  done
done
