#!/usr/bin/env bash
# Every experiment of the paper, one after another (a GPU job: see each script's compute note).
set -euo pipefail
here="$(dirname "$0")"
for script in main_comparison noisy_comparison ablation_keypoints ablation_layers seeds \
              ablation_kernel_size; do
  bash "$here/$script.sh"
done
