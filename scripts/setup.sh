#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the pinned requirements. Safe to run again: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
# OCAtari drags GUI opencv, pandas, seaborn and scikit-learn with it; its runtime needs are in
# requirements.txt, so it is installed on its own without dependencies.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps ocatari==2.2.1
# The project itself, editable: train, evaluate, permakey_tf, tfds_atari and bench import from
# anywhere, and permakey-train / permakey-evaluate / permakey-build-data are on .venv/bin.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
