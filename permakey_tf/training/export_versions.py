"""The versions of a run's export folder: which exist, which comes next, which checkpoint each holds.

``RUN_DIR/export/<version>/`` holds one SavedModel per version (written by permakey_tf.training.export;
TF Serving serves the highest). ``RUN_DIR/export/exported.json`` maps each version this project
wrote to the SHA-256 of the checkpoint it was made from, so that the export at the end of a
resumed, already finished run adds no copy of the same model. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from permakey_tf.atomic_files import read_json_record, write_json_atomically

RECORD = "exported.json"


def next_version(export_base: os.PathLike | str) -> int:
    """1 for an empty export folder, else one more than the highest numeric version in it."""
    base = Path(export_base)
    versions = [int(p.name) for p in base.glob("*") if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def newest_saved_model(export_base: os.PathLike | str) -> Optional[Path]:
    """The highest-numbered ``<version>`` folder holding ``saved_model.pb`` (None if none).
    Only numeric folders are versions (as for TF Serving): an export being written
    (``.tmp-<version>-<pid>``) is never taken for one."""
    base = Path(export_base)
    versions = [p for p in base.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file()] \
        if base.is_dir() else []
    return max(versions, key=lambda p: int(p.name), default=None)


def newest_holds(export_base: os.PathLike | str, checkpoint_digest: str) -> Optional[Path]:
    """The newest version if it was made from the checkpoint with this SHA-256, else None."""
    base = Path(export_base)
    newest = str(next_version(base) - 1)
    return base / newest if read_json_record(base / RECORD).get(newest) == checkpoint_digest else None


def record_export(version_dir: os.PathLike | str, checkpoint_digest: str) -> None:
    """Notes that ``version_dir`` (``<export_base>/<version>``) was made from that checkpoint."""
    version_dir = Path(version_dir)
    record = read_json_record(version_dir.parent / RECORD)
    record[version_dir.name] = checkpoint_digest
    write_json_atomically(version_dir.parent / RECORD, record, indent=1)
