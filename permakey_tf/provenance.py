"""Where a report's numbers come from: the code version (git commit of this checkout, and whether
tracked files differ from it) and the machine (CPU model, a short label, core count).

Seed protocols (experiments/over_seeds.py) and evaluate.py's metrics.json record
:func:`provenance`, so that every committed number names its code version and machine. Outside a
git checkout the commit is None. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from permakey_tf.machine import cpu_model, machine_label

REPO_ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = REPO_ROOT) -> dict:
    """``{"commit": sha or None, "uncommitted_changes": bool or None}`` of the checkout at ``root``."""
    def git(*args):
        try:
            result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except OSError:  # no git on this machine
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "uncommitted_changes": bool(changed) if changed is not None else None}


def provenance(root: Path = REPO_ROOT) -> dict:
    """The code version (:func:`code_version`) and the machine: ``cpu``, ``machine``, ``cpu_count``."""
    return {"cpu": cpu_model(), "machine": machine_label(), "cpu_count": os.cpu_count(), **code_version(root)}
