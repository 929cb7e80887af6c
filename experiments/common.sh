# Shared settings of the paper's experiments; sourced by the other scripts.
#
# Override from the environment, e.g.  PRESET=quick SEEDS="0" bash experiments/main_comparison.sh
#   PYTHON     interpreter (default .venv/bin/python if present, else python)
#   PRESET     train.py preset: paper (default; the paper's sizes) | quick | smoke
#   SEEDS      seeds to train (default "0 1 2 3 4": the paper's 5 seeds)
#   LOGDIR     root of the run folders (default runs/experiments)
#   OUT        root of evaluate.py's outputs (default runs/eval/experiments)
#   DATA_DIR   TFDS data directory (default: TFDS's own, ~/tensorflow_datasets)
#   DRY_RUN=1  print the commands instead of running them
#   EVAL_ARGS  extra evaluate.py flags (e.g. "--max-frames 1000")
#   REPORTS    root of the report folders of over_seeds.py (default: its own,
#              docs/results/<UTC date>_<machine>)
#   PROBE=1    also run probe_state.py's RAM probes on every seed of the seed study and the
#              ablations (off by default: their questions are about keypoint placement, and the
#              probes cost about 3 minutes a seed on a 2-core Zen 4, a third of a quick run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
PRESET=${PRESET:-paper}
SEEDS=${SEEDS:-"0 1 2 3 4"}
LOGDIR=${LOGDIR:-runs/experiments}
OUT=${OUT:-runs/eval/experiments}
DATA_ARGS=()
if [[ -n "${DATA_DIR:-}" ]]; then DATA_ARGS=(--data-dir "$DATA_DIR"); fi
EVAL_ARGS=${EVAL_ARGS:-}

run() {  # echo, then run unless DRY_RUN=1
  echo "+ $*"
  if [[ "${DRY_RUN:-0}" != 1 ]]; then "$@"; fi
}

# train GAME MODEL NOISE NAME [extra train.py flags...]; sets RUN to the run folder.
# A finished run (checkpoint and export present) is not trained again; an interrupted one resumes.
train() {
  local game=$1 model=$2 noise=$3 name=$4
  shift 4
  RUN="$LOGDIR/$game/$model/$name"
  if [[ -f "$RUN/checkpoints/best.keras" && -d "$RUN/export" ]]; then
    echo "= $RUN already trained"
  elif [[ -f "$RUN/config.json" ]]; then
    run "$PYTHON" train.py --resume "$RUN"
  else
    run "$PYTHON" train.py --game "$game" --model "$model" --noise "$noise" --preset "$PRESET" \
      --logdir "$LOGDIR" --name "$name" "${DATA_ARGS[@]}" "$@"
  fi
}

evaluate() {  # evaluate OUT_SUBDIR RUN_DIR... (evaluate.py measures clean and all noise types)
  local out=$1
  shift
  # shellcheck disable=SC2086
  run "$PYTHON" evaluate.py "$@" --out "$OUT/$out" "${DATA_ARGS[@]}" $EVAL_ARGS
}

# over_seeds GAME TAG [FIELD=VALUE...]: one setting of an ablation over $SEEDS with
# experiments/over_seeds.py (train and evaluate each seed, probe it if PROBE=1, the seeds'
# agreement, the seeds table; a finished step is skipped). Sets RUNS to the setting's run folders.
over_seeds() {
  local game=$1 tag=$2
  shift 2
  local settings=() reports=() probe=() setting seed
  for setting in "$@"; do settings+=(--set "$setting"); done
  if [[ -n "${REPORTS:-}" ]]; then reports=(--reports "$REPORTS"); fi
  if [[ "${PROBE:-0}" != 1 ]]; then probe=(--no-probe); fi
  # shellcheck disable=SC2086
  run "$PYTHON" experiments/over_seeds.py --game "$game" --preset "$PRESET" --seeds $SEEDS \
    --tag "$tag" --logdir "$LOGDIR" "${DATA_ARGS[@]}" "${reports[@]}" "${probe[@]}" "${settings[@]}"
  RUNS=()
  for seed in $SEEDS; do RUNS+=("$LOGDIR/$game/permakey/${PRESET}-${tag}_none_seed$seed"); done
}

# ablation_figure NAME GAME RUN_DIR...: evaluate.py over every setting's runs at once, which
# draws the ablation figure (F1 against the setting, seeds averaged, beside the baselines) into
# REPORTS (or today's docs/results/<UTC date>_<machine>)/GAME/ablation-NAME.
ablation_figure() {
  local name=$1 game=$2
  shift 2
  local root=${REPORTS:-}
  if [[ -z "$root" ]]; then
    root="docs/results/$(date -u +%F)_$("$PYTHON" -c \
      'from permakey_tf.machine import machine_label; print(machine_label())')"
  fi
  # shellcheck disable=SC2086
  run "$PYTHON" evaluate.py "$@" --noise none --out "$root/$game/ablation-$name" --no-progress \
    "${DATA_ARGS[@]}" $EVAL_ARGS
}
