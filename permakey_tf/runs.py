"""The run folder: one writer at a time, and no debris from interrupted writes.

Layout (docs/ARCHITECTURE.md)::

    RUN_DIR/config.json            the resolved RunConfig
           /.lock                  held (flock) by the process that writes the run
           /checkpoints/best.keras (+ best.json: its validation loss and epoch)
           /backup/                resume state of the last completed epoch
           /tensorboard/           train / validation / images / quality
           /export/<version>/      SavedModels for TF Serving

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional

# The layout, relative to RUN_DIR: every module that reads or writes a run folder uses these.
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
CHECKPOINT = Path("checkpoints") / "best.keras"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"
EXPORT_DIR = "export"
EXPORT_RECORD = Path(EXPORT_DIR) / "exported.json"

# The fields of a run's ``data`` settings (training.DataSettings) that select its dataset variant.
_DATASET_FIELDS = ("train_frames", "validation_frames", "test_frames", "data_dir", "dataset_seed")


def dataset_arguments(data_settings: Mapping[str, Any], data_dir: Optional[str] = None) -> dict:
    """Keyword arguments of ``permakey_tf.data``'s loaders that select the dataset a run trained
    on, from its ``data`` settings (``DataSettings.to_dict()`` or config.json's ``data``).

    ``data_dir`` (if given) replaces the recorded data directory. Train and evaluate both use
    this, so that they never disagree on which variant (sizes, collection seed) a run used."""
    arguments = {k: data_settings[k] for k in _DATASET_FIELDS if k in data_settings}
    if data_dir is not None:
        arguments["data_dir"] = data_dir
    return arguments


class RunFolderBusyError(RuntimeError):
    """Another process is writing this run folder."""


class RunLock:
    """An exclusive lock on a run folder for as long as a process writes it.

    ``flock`` on ``RUN_DIR/.lock``: the kernel releases it when the process ends, however it ends
    (kill -9 included), so a crashed run never leaves a stale lock. The holder's pid is written
    into the file for the error message of the process that is refused.
    """

    def __init__(self, run_dir: os.PathLike | str):
        self.run_dir = Path(run_dir)
        self._file = None

    def acquire(self) -> "RunLock":
        path = self.run_dir / LOCK_FILE
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderBusyError(
                f"{self.run_dir} is being written by another process (pid {holder}); wait for it "
                "to finish or stop it before resuming, exporting or training into this folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temporaries(run_dir: os.PathLike | str) -> list[Path]:
    """Deletes what interrupted atomic writes leave in a run folder: ``.tmp-*`` files and folders
    (checkpoint and export temporaries) and ``*.tmp`` files. Call it while holding the RunLock,
    when no write of this folder can be in flight. Returns what was removed."""
    removed = []
    root = Path(run_dir)
    for pattern in (".tmp-*", "*.tmp"):
        for path in root.rglob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def nearest_existing_parent(path: os.PathLike | str) -> Optional[Path]:
    """The closest ancestor of ``path`` (itself included) that exists."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def refuse_unwritable_flag(parser, path: Optional[os.PathLike | str], flag: str) -> None:
    """``parser.error`` (exit 2 with the message) when the folder given to ``flag`` cannot be
    written (:func:`check_writable_folder`); nothing when it can or ``path`` is None."""
    problem = None if path is None else check_writable_folder(path, flag)
    if problem:
        parser.error(problem)


def check_writable_folder(path: os.PathLike | str, what: str) -> Optional[str]:
    """A message saying why ``path`` cannot be (or become) a folder we write, or None if it can:
    it is a file, or lies under one, or its nearest existing parent is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{what} {path} is a file, not a folder; choose a folder"
    parent = nearest_existing_parent(path)
    if parent is not None and not parent.is_dir():
        return f"{what} {path} lies under {parent}, which is a file; choose a folder"
    if parent is not None and not os.access(parent, os.W_OK):
        return f"{what} {path}: cannot write into {parent} (permission denied)"
    return None
