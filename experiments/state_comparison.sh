#!/usr/bin/env bash
# Keypoints as a state representation (docs/notes/one-seed-results.md, "Keypoints as a state representation"):
# PermaKey and Transporter on the paper's games, clean, then evaluate.py (keypoints vs objects)
# and probe_state.py (AtariARI-style RAM probes) per game, then the tables (the last one,
# experiments/paper_table.py, joins both per run and evaluation noise).
#
# Compute: the quick preset (PRESET=quick SEEDS=0, the default here) takes 8-16 min per run on a
# 2-core CPU (docs/notes/one-seed-results.md lists each), evaluation ~1-2 min and the probes ~2-5 min per game:
# about 3.5 hours for the 12 clean runs. Enduro has no RAM annotation in the benchmark, so it is
# evaluated but not probed. NOISES="vertical both" NOISY_GAMES="..." adds noisy runs (trained and
# evaluated with the bars; probes read the noisy frames).
PRESET=${PRESET:-quick}
SEEDS=${SEEDS:-0}
source "$(dirname "$0")/common.sh"
GAMES=${GAMES:-"spaceinvaders frostbite mspacman enduro battlezone montezumarevenge"}
NOISES=${NOISES:-}
NOISY_GAMES=${NOISY_GAMES:-"spaceinvaders enduro montezumarevenge"}
PROBES=()
probe() {  # probe OUT_SUBDIR NOISE RUN_DIR...
  local out=$1 noise=$2
  shift 2
  run "$PYTHON" probe_state.py "$@" --noise "$noise" --out "$OUT/$out" "${DATA_ARGS[@]}"
  PROBES+=("$OUT/$out/probe.json")
}
one_setting() {  # one_setting GAME NOISE
  local game=$1 noise=$2 runs=()
  for seed in $SEEDS; do
    for model in permakey transporter; do
      train "$game" "$model" "$noise" "${PRESET}_${noise}_seed$seed" --seed "$seed"
      runs+=("$RUN")
    done
  done
  local evnoise=none
  [[ $noise != none ]] && evnoise="none,$noise"
  EVAL_ARGS="$EVAL_ARGS --noise $evnoise" evaluate "state/$game/$noise" "${runs[@]}"
  if [[ $game != enduro ]]; then probe "state_probe/$game/$noise" "$noise" "${runs[@]}"; fi
}
for game in $GAMES; do one_setting "$game" none; done
for noise in $NOISES; do
  for game in $NOISY_GAMES; do one_setting "$game" "$noise"; done
done
if [[ "${DRY_RUN:-0}" != 1 ]]; then
  "$PYTHON" experiments/keypoint_table.py "$OUT"/state/*/*/metrics.json
  "$PYTHON" experiments/state_table.py "${PROBES[@]}"
  # The paper's comparison as one table: every evaluation beside the probe on its own frames.
  "$PYTHON" experiments/paper_table.py --metrics "$OUT"/state/*/*/metrics.json --probes "${PROBES[@]}"
fi
