"""The best checkpoint with early stopping, and the resume backup of the last completed epoch.

Every file is written to a temporary name and renamed, so a kill never leaves half a file under
the real name; the best checkpoint is never replaced by a worse model, also across restarts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Mapping, Optional

import keras

from permakey_tf.atomic_files import write_json_atomically
from permakey_tf.training.run_state import global_step, validation_loss


def save_model_atomically(model: keras.Model, path: os.PathLike | str) -> None:
    """model.save to a temporary file beside ``path``, then rename: a crash never leaves half a
    checkpoint under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


class BestCheckpointAndEarlyStopping(keras.callbacks.Callback):
    """Saves the model whenever the validation loss improves, and stops after ``patience`` epochs
    without improvement.

    The validation loss is ``val_loss`` (:func:`validation_loss`). The state (best value, its epoch, epochs since) is part
    of the resume backup, so early stopping counts across interruptions. Every save also writes
    ``best.json`` beside the checkpoint (its validation loss and epoch); a run that starts without
    resume state in a folder that already holds a checkpoint (e.g. after its backup was deleted)
    starts from that value, so a worse model never replaces the kept one.

    Args:
      path: the checkpoint, e.g. RUN_DIR/checkpoints/best.keras.
      patience: epochs without improvement before stopping (None = never stop early).
      save: False on non-chief workers of a multi-worker run (they track but do not write).
    """

    def __init__(self, path, patience: Optional[int], save: bool = True, stream=None):
        super().__init__()
        self.path = Path(path)
        self.patience = patience
        self.save = save
        self.stream = stream or sys.stdout
        self.best = math.inf
        self.best_epoch = 0
        self.epochs_since_best = 0
        self.stopped_early = False

    def state(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "epochs_since_best": self.epochs_since_best,
            "stopped_early": self.stopped_early,
        }

    @property
    def record_path(self) -> Path:
        return self.path.with_suffix(".json")

    def on_train_begin(self, logs=None):
        if self.best == math.inf and self.path.exists() and self.record_path.exists():
            try:
                record = json.loads(self.record_path.read_text())
                self.best, self.best_epoch = float(record["val_loss"]), int(record["epoch"])
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable record: the checkpoint is replaced at the first epoch
            else:
                print(f"{self.path} is kept unless a model beats its validation loss "
                      f"{self.best:.5g} (epoch {self.best_epoch}).", file=self.stream, flush=True)

    def set_state(self, state: Mapping) -> None:
        self.best = float(state.get("best", math.inf))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.epochs_since_best = int(state.get("epochs_since_best", 0))
        self.stopped_early = bool(state.get("stopped_early", False))

    def on_epoch_end(self, epoch, logs=None):
        value = validation_loss(logs or {})
        if value is None:
            raise ValueError(
                "No validation loss in the epoch logs: the best checkpoint and early stopping need "
                "fit(..., validation_data=...) and a model whose test_step reports losses."
            )
        if value < self.best:
            self.best, self.best_epoch, self.epochs_since_best = value, epoch + 1, 0
            if self.save:
                save_model_atomically(self.model, self.path)
                write_json_atomically(self.record_path, {"val_loss": value, "epoch": epoch + 1, "metric": "val_loss"})
        else:
            self.epochs_since_best += 1
        if self.patience is not None and self.epochs_since_best >= self.patience:
            self.model.stop_training = True
            self.stopped_early = True
            print(
                f"Early stopping: val_loss has not improved for {self.epochs_since_best} epochs "
                f"(best {self.best:.5g} at epoch {self.best_epoch}).",
                file=self.stream,
                flush=True,
            )


class CorruptBackupError(RuntimeError):
    """The resume state on disk cannot be read; the message says where and what to do."""


class ResumeBackup(keras.callbacks.Callback):
    """Backs up the whole training state at the end of every epoch, for --resume.

    Layout of ``backup_dir``:
      ``epoch-<n>/state.weights.h5``: model weights *and* every optimizer's variables (iterations,
        Adam moments: the learning-rate schedules are functions of the iterations), the VAE's
        sampling-seed state;
      ``epoch-<n>/state.json``: completed epochs, global step and the state of the callbacks given
        as ``stateful`` (best validation loss, early-stopping count);
      ``latest.json``: which ``epoch-<n>`` is current. It is replaced atomically after the epoch
        folder is complete, so a kill at any moment leaves the previous complete backup in force.

    Data order needs no state: train.py derives each epoch's shuffle and noise seeds from (seed,
    epoch), so epoch n sees the same batches whether or not the run was interrupted.
    """

    def __init__(self, backup_dir, stateful: Mapping[str, keras.callbacks.Callback] = (), save: bool = True):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.stateful = dict(stateful)
        self.save = save

    def on_epoch_end(self, epoch, logs=None):
        if not self.save:
            # Non-chief workers of a multi-worker run still take part in reading the variables.
            return
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        folder = self.backup_dir / f"epoch-{epoch + 1:04d}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        self.model.save_weights(folder / "state.weights.h5")
        state = {
            "epoch": epoch + 1,
            "global_step": global_step(self.model),
            "callbacks": {name: cb.state() for name, cb in self.stateful.items()},
        }
        write_json_atomically(folder / "state.json", state)
        previous = read_latest(self.backup_dir, missing_ok=True)
        write_json_atomically(self.backup_dir / "latest.json", {"folder": folder.name})
        if previous is not None and previous != folder:
            shutil.rmtree(previous, ignore_errors=True)


def read_latest(backup_dir, missing_ok: bool = False) -> Optional[Path]:
    """The current backup folder named by ``backup_dir/latest.json`` (None if there is none)."""
    backup_dir = Path(backup_dir)
    pointer = backup_dir / "latest.json"
    if not pointer.exists():
        if missing_ok:
            return None
        raise CorruptBackupError(f"No resume state in {backup_dir} (latest.json is missing).")
    try:
        name = json.loads(pointer.read_text())["folder"]
        folder = backup_dir / name
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptBackupError(
            f"The resume pointer {pointer} is corrupt ({error!r}). Delete {backup_dir} to restart "
            "the run from scratch, or start a new run."
        ) from None
    # The pointer names an epoch folder inside backup_dir, never anything else: a resume
    # replaces (deletes) the folder it restored from, so a pointer that leads elsewhere (edited,
    # or through a link) must not be followed.
    if (not isinstance(name, str) or not re.fullmatch(r"epoch-\d{4,}", name)
            or folder.resolve().parent != backup_dir.resolve()):
        raise CorruptBackupError(
            f"The resume pointer {pointer} names {name!r}, which is not an epoch-<n> folder inside "
            f"{backup_dir}; nothing was read or deleted. Delete {backup_dir} to restart the run from "
            "scratch, or start a new run.")
    return folder


def restore_backup(model: keras.Model, backup_dir) -> Optional[dict]:
    """Loads the latest backup into ``model`` (weights and optimizer states) and returns its
    state dict ({"epoch", "global_step", "callbacks"}); None if the run has no backup yet.

    The model must be built, and so must every optimizer other than ``model.optimizer`` (which
    is built here on the trainable variables if needed): Keras silently skips the saved state of
    an unbuilt optimizer. A restored step count that disagrees with the saved one is an error.
    Raises CorruptBackupError with the path and the fix if the files cannot be read.
    """
    folder = read_latest(backup_dir, missing_ok=True)
    if folder is None:
        return None
    weights = folder / "state.weights.h5"
    state_path = folder / "state.json"
    fix = (
        f"Delete {Path(backup_dir)} to restart the run from scratch (checkpoints/best.keras is "
        "kept and only replaced by a model with a lower validation loss), or start a new run."
    )
    try:
        state = json.loads(state_path.read_text())
        epoch = int(state["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptBackupError(f"The resume state {state_path} is unreadable ({error!r}). {fix}") from None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        # An unbuilt optimizer would silently skip its saved variables.
        optimizer.build(model.trainable_variables)
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py / Keras raise several types for damaged files
        raise CorruptBackupError(
            f"The resume checkpoint {weights} is corrupt or does not match this model "
            f"({type(error).__name__}: {error}). {fix}"
        ) from None
    restored_step = global_step(model)
    if "global_step" in state and restored_step != int(state["global_step"]):
        raise CorruptBackupError(
            f"The resume checkpoint {weights} restored optimizer step {restored_step}, but its "
            f"state says {state['global_step']}: optimizer state was not restored. {fix}"
        )
    state["epoch"] = epoch
    return state


def unloadable_reason(path, error: Exception) -> str:
    """Why a ``.keras`` checkpoint could not be loaded, in the user's terms: a file that is not a
    complete zip archive is named truncated or overwritten (Keras itself then says "File not
    found", which misleads); otherwise the error's type and first line."""
    import zipfile

    path = Path(path)
    if not path.exists():
        return "the file does not exist"
    if not zipfile.is_zipfile(path):
        return f"it is not a complete .keras archive ({path.stat().st_size} bytes: truncated or overwritten)"
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {first_line}"
