"""The run folder: one writer at a time, and no debris from interrupted writes.

Layout (docs/ARCHITECTURE.md)::

    RUN_DIR/config.json            the resolved RunConfig
           /.lock                  held (flock) by the process that writes the run
           /checkpoints/best.keras (+ best.json: its validation loss and epoch)
           /backup/                resume state of the last completed epoch
           /tensorboard/           train / validation / images / quality
           /export/<version>/      SavedModels for TF Serving

This module is the one reader and writer of a run folder's config and layout: train.py creates
and resumes run folders through it, evaluate.py and probe_state.py read them through
:func:`read_run_folder` (a typed :class:`RunFolder`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from permakey_tf.atomic_files import write_json_atomically
from permakey_tf.training.export_versions import newest_saved_model
from permakey_tf.training.run_config import ConfigError, RunConfig

# The layout, relative to RUN_DIR: every module that reads or writes a run folder uses these.
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
CHECKPOINT = Path("checkpoints") / "best.keras"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"
EXPORT_DIR = "export"

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


def remove_unused_run_dir(run_dir: os.PathLike | str) -> bool:
    """Deletes a run folder that holds nothing but what starting a run wrote (config.json and the
    lock file), so a run refused before training (damaged data) leaves nothing behind and the
    same --name can be used again. Anything else in it keeps the folder. Release the lock first.
    Returns whether the folder was removed."""
    root = Path(run_dir)
    names = {path.name for path in root.iterdir()}
    if not names <= {CONFIG_FILE, LOCK_FILE}:
        return False
    for name in names:
        (root / name).unlink()
    root.rmdir()
    return True


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


def check_writable_folder(path: os.PathLike | str, what: str, need_write: bool = True) -> Optional[str]:
    """A message saying why ``path`` cannot be (or become) a folder we write, or None if it can:
    it is a file, or lies under one, or (with ``need_write``) its nearest existing parent is not
    writable. A data folder that may already hold prepared data is checked without
    ``need_write``: reading needs no write access, and building says so itself."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{what} {path} is a file, not a folder; choose a folder"
    parent = nearest_existing_parent(path)
    if parent is not None and not parent.is_dir():
        return f"{what} {path} lies under {parent}, which is a file; choose a folder"
    if need_write and parent is not None and not os.access(parent, os.W_OK):
        return f"{what} {path}: cannot write into {parent} (permission denied)"
    return None


# ------------------------------------------------------------------ the config, typed


def run_dir_for(config: RunConfig, now: Optional[datetime.datetime] = None) -> Path:
    """LOGDIR/<game>/<model>/<name or UTC timestamp YYYYmmdd-HHMMSS>."""
    name = config.train.name
    if name is None:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        name = now.strftime("%Y%m%d-%H%M%S")
    return Path(config.train.logdir) / config.game / config.model / name


def create_run_dir(config: RunConfig) -> Path:
    """Creates a fresh run folder and writes config.json; refuses to reuse an existing run.

    With a timestamp name, a clash (two runs in one second) gets a numeric suffix.
    """
    run_dir = run_dir_for(config)
    if run_dir.exists() and config.train.name is None:
        base = run_dir
        suffix = 1
        while run_dir.exists():
            run_dir = base.with_name(f"{base.name}-{suffix}")
            suffix += 1
    if run_dir.exists() and (run_dir / CONFIG_FILE).exists():
        raise ConfigError(
            f"Run folder {run_dir} already exists. Continue it with --resume {run_dir}, "
            "or choose another --name."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.train.name is None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, name=run_dir.name))
    write_config(config, run_dir)
    return run_dir


def write_config(config: RunConfig, run_dir: Path) -> Path:
    """Writes RUN_DIR/config.json atomically (temporary file + rename)."""
    return write_json_atomically(Path(run_dir) / CONFIG_FILE, config.to_dict())


def load_config(run_dir: os.PathLike | str) -> RunConfig:
    """Reads RUN_DIR/config.json; raises ConfigError saying what is wrong with the folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir} is not a run folder (it does not exist)")
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run folder: it has no {CONFIG_FILE}")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path} is not a valid run config ({error!r})") from None


def latest_run_dir(logdir: str, game: str, model: str) -> Path:
    """The most recently modified run folder (one holding config.json) under LOGDIR/game/model."""
    root = Path(logdir) / game / model
    runs = [p for p in root.glob("*") if (p / CONFIG_FILE).exists()] if root.is_dir() else []
    if not runs:
        raise ConfigError(
            f"--resume found no run under {root}; pass the run folder (--resume RUN_DIR) or the "
            "--logdir/--game/--model/--name it was started with"
        )
    return max(runs, key=lambda p: (p / CONFIG_FILE).stat().st_mtime)


# ------------------------------------------------------------------ reading a finished run


class NotARunError(ValueError):
    """The folder given is not a run folder written by train.py; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """A run folder and what it holds, as evaluate.py and probe_state.py read it.

    Attributes:
      path: the run folder.
      config: its RunConfig (config.json, typed).
      checkpoint: ``checkpoints/best.keras`` if present.
      saved_model: the newest ``export/<version>`` holding ``saved_model.pb``, if any.
    """

    path: Path
    config: RunConfig
    checkpoint: Optional[Path]
    saved_model: Optional[Path]

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def game(self) -> str:
        return self.config.game

    @property
    def label(self) -> str:
        """``<game>/<model>/<name>`` (the last three path parts of a train.py run folder)."""
        return "/".join(self.path.resolve().parts[-3:])

    @property
    def num_keypoints(self) -> int:
        return int(self.config.model_config.num_keypoints)


def read_run_folder(path: os.PathLike | str) -> RunFolder:
    """Checks that ``path`` is a run folder with a trained model and reads its config; raises
    NotARunError naming what is missing or wrong."""
    from permakey_tf.models.registry import MODEL_SPECS

    path = Path(path)
    if not path.is_dir():
        raise NotARunError(f"{path} is not a run folder: it does not exist or is not a directory")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise NotARunError(
            f"{path} is not a run folder: it has no {CONFIG_FILE}. Pass the folder train.py "
            "created (LOGDIR/<game>/<model>/<name>), which holds config.json and checkpoints/."
        )
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise NotARunError(f"{config_path} is not valid JSON ({error})") from None
    missing = [k for k in ("model", "game", "model_config") if k not in values]
    if missing:
        raise NotARunError(f"{config_path} lacks the fields {missing}; was it written by train.py?")
    if values["model"] not in MODEL_SPECS:
        raise NotARunError(f"{config_path} names model {values['model']!r}; known models: {sorted(MODEL_SPECS)}")
    try:
        config = load_config(path)
    except ConfigError as error:
        raise NotARunError(str(error)) from None
    checkpoint = path / CHECKPOINT
    saved_model = newest_saved_model(path / EXPORT_DIR)
    if not checkpoint.is_file() and saved_model is None:
        raise NotARunError(
            f"{path} has no trained model: neither {CHECKPOINT} nor {EXPORT_DIR}/<version>/"
            "saved_model.pb exists. Has training finished its first epoch? Export one with "
            "train.py's export option."
        )
    return RunFolder(path, config, checkpoint if checkpoint.is_file() else None, saved_model)
