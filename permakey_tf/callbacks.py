"""Keras callbacks for a training run: TensorBoard scalars and images, best checkpoint and early
stopping, resume backups, NaN stop and a one-line summary per epoch.

Everything that writes TensorBoard summaries does it from a callback with its own
``tf.summary`` writer and an explicit step (docs/BACKGROUND.md section 6: ``tf.summary`` inside a
custom ``train_step`` logs at step 0 before Keras 3.15). Steps are *global*: a resumed run continues
the curves where the interrupted one stopped instead of starting again at 0.

Epoch numbers in TensorBoard and on the console count completed epochs (1 = after the first).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf


# ----------------------------------------------------------------------------- helpers


def model_optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """The model's optimizers by name (the names key the resume backup): the model's own
    ``named_optimizers()`` where it has several (PermaKey: one per module), else
    ``{"optimizer": model.optimizer}``."""
    if hasattr(model, "named_optimizers"):
        return dict(model.named_optimizers())
    main = getattr(model, "optimizer", None)
    return {"optimizer": main} if isinstance(main, keras.optimizers.Optimizer) else {}


def learning_rates(model: keras.Model) -> dict[str, float]:
    """Current learning rate of each optimizer: {"learning_rate": lr} for one optimizer,
    {"learning_rate/<attribute>": lr, ...} for several."""
    optimizers = model_optimizers(model)
    rates = {}
    for name, optimizer in optimizers.items():
        value = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        key = "learning_rate" if len(optimizers) == 1 else f"learning_rate/{name}"
        rates[key] = value
    return rates


def global_step(model: keras.Model) -> int:
    """Training steps taken so far: ``model.optimizer.iterations`` (restored on resume)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def _scalar_logs(logs: Optional[Mapping]) -> dict[str, float]:
    out = {}
    for name, value in (logs or {}).items():
        try:
            array = np.asarray(keras.ops.convert_to_numpy(value))
        except Exception:  # non-numeric log entries are not scalars
            continue
        if array.size == 1 and array.dtype.kind in "fiu":
            out[name] = float(array.reshape(()))
    return out


def validation_loss(logs: Mapping) -> Optional[float]:
    """The validation loss used for the best checkpoint and early stopping: ``val_loss`` (both
    models report their total loss as ``loss``), or None when the epoch had no validation."""
    return _scalar_logs(logs).get("val_loss")


def _atomic_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- NaN stop


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message says what was kept and what to try."""


class RestartPointNet(keras.callbacks.Callback):
    """Calls ``model.restart_pointnet`` before the batch at which the VAE optimizer (whose step
    count is never reset) reaches ``step`` (``PermaKeyConfig.pointnet_restart_step``).

    The fresh weights are drawn with ``seed + step``, so a resumed run restarts exactly as an
    uninterrupted one; a run resumed after the restart step keeps its restored PointNet."""

    def __init__(self, step: int, seed: int):
        super().__init__()
        self.step, self.seed = int(step), int(seed)

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.vae_optimizer.iterations) == self.step:
            self.model.restart_pointnet(self.seed + self.step)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss by raising :class:`NonFiniteLossError`.

    Raising (instead of setting ``stop_training``) means no later callback sees the broken epoch:
    the best checkpoint and the resume backup keep the last good state.

    Put it first in the callback list so that it runs before anything that saves.
    """

    def __init__(self, kept: str = ""):
        super().__init__()
        self.kept = kept
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, where: str):
        for name, value in _scalar_logs(logs).items():
            if "loss" in name and not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{name} became {value} {where} (epoch {self._epoch + 1}). Training stopped. "
                    f"{self.kept} Try a lower learning rate or --precision float32, then --resume "
                    "(it continues from the last completed epoch)."
                )

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"at training step {batch + 1} of the epoch")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "in validation")


# ----------------------------------------------------------------------------- console


class EpochSummary(keras.callbacks.Callback):
    """Prints one line per epoch: time, training and validation losses, learning rate(s)."""

    def __init__(self, epochs: int, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        scalars = _scalar_logs(logs)
        train = {k: v for k, v in scalars.items() if not k.startswith("val_") and "loss" in k}
        val = {k[4:]: v for k, v in scalars.items() if k.startswith("val_") and "loss" in k}
        rates = learning_rates(self.model)
        parts = [f"epoch {epoch + 1}/{self.epochs} ({time.time() - self._start:.1f}s)"]
        parts.append("train " + " ".join(f"{k}={v:.4g}" for k, v in train.items()))
        if val:
            parts.append("val " + " ".join(f"{k}={v:.4g}" for k, v in val.items()))
        if rates:
            parts.append("lr " + " ".join(f"{v:.3g}" for v in sorted(set(rates.values()))))
        print(" | ".join(parts), file=self.stream, flush=True)


# ----------------------------------------------------------------------------- TensorBoard


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars with the callback's own writers and global steps.

    Writes ``<logdir>/train`` (every loss/metric and learning rate, per step as ``step/<name>``
    every ``every_steps`` steps, per epoch as ``epoch/<name>``) and ``<logdir>/validation``
    (``epoch/<name>``). The step axis of the per-step curves is the optimizer's iteration count,
    the epoch axis counts completed epochs, so resumed runs continue the same curves.
    """

    def __init__(self, logdir: os.PathLike | str, every_steps: int = 1):
        super().__init__()
        self.logdir = Path(logdir)
        self.every_steps = max(1, int(every_steps))
        self._train_writer = None
        self._val_writer = None
        self._step = 0

    def on_train_begin(self, logs=None):
        self._train_writer = tf.summary.create_file_writer(str(self.logdir / "train"))
        self._val_writer = tf.summary.create_file_writer(str(self.logdir / "validation"))
        self._step = global_step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every_steps:
            return
        values = _scalar_logs(logs)
        values.update(learning_rates(self.model))
        with self._train_writer.as_default(step=self._step):
            for name, value in values.items():
                tf.summary.scalar(f"step/{name}", value)

    def on_epoch_end(self, epoch, logs=None):
        scalars = _scalar_logs(logs)
        train = {k: v for k, v in scalars.items() if not k.startswith("val_")}
        train.update(learning_rates(self.model))
        val = {k[4:]: v for k, v in scalars.items() if k.startswith("val_")}
        with self._train_writer.as_default(step=epoch + 1):
            for name, value in train.items():
                tf.summary.scalar(f"epoch/{name}", value)
        with self._val_writer.as_default(step=epoch + 1):
            for name, value in val.items():
                tf.summary.scalar(f"epoch/{name}", value)
        self._train_writer.flush()
        self._val_writer.flush()

    def on_train_end(self, logs=None):
        for writer in (self._train_writer, self._val_writer):
            if writer is not None:
                writer.close()


def _to_unit_rgb(maps: np.ndarray) -> np.ndarray:
    """[N, H, W] floats -> [N, H, W, 3] floats in [0, 1], min-max per image (flat maps -> 0)."""
    maps = maps.astype(np.float32)
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    scaled = (maps - low) / np.maximum(high - low, 1e-8)
    return np.repeat(scaled[..., None], 3, axis=-1)


def map_panels(frames: np.ndarray, outputs: Mapping[str, np.ndarray], scale: int = 2) -> np.ndarray:
    """One picture: a row per frame with [frame | sum of Gaussian maps | error map per layer |
    reconstruction] (the last two for PermaKey only).

    Args:
      frames: uint8 [N, H, W, 3].
      outputs: the model's output dict as numpy (``gaussian_maps`` [N, H, W, K]; optional
        ``error_maps`` [N, H, W, L] and ``reconstruction`` [N, H, W, 3] in [0, 1]).
      scale: nearest-neighbour upscaling of every tile.
    Returns:
      uint8 [N * H * scale, T * W * scale, 3] with T tiles per row.
    """
    tiles = [frames.astype(np.float32) / 255.0]
    tiles.append(_to_unit_rgb(np.asarray(outputs["gaussian_maps"], np.float32).sum(axis=-1)))
    if "error_maps" in outputs:
        errors = np.asarray(outputs["error_maps"], np.float32)
        tiles += [_to_unit_rgb(errors[..., i]) for i in range(errors.shape[-1])]
    if "reconstruction" in outputs:
        tiles.append(np.clip(np.asarray(outputs["reconstruction"], np.float32), 0.0, 1.0))
    rows = np.concatenate(tiles, axis=2)  # [N, H, T*W, 3]
    grid = np.concatenate(list(rows), axis=0)  # [N*H, T*W, 3]
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return np.round(grid * 255.0).astype(np.uint8)


def _default_overlay(frames: np.ndarray, keypoints_pixels: np.ndarray) -> np.ndarray:
    """Keypoints over frames as a grid, via permakey_tf.viz.overlay_grid."""
    from permakey_tf import viz

    return np.asarray(viz.overlay_grid(frames, keypoints_pixels))


class KeypointImages(keras.callbacks.Callback):
    """Each epoch, draws fixed validation frames into TensorBoard with the callback's own writer.

    Images (step = completed epochs):
      ``keypoints``: the frames with the model's keypoints overlaid (a grid, viz.overlay_grid);
      ``maps``: per frame, the frame, the summed Gaussian maps, each error map and the
      reconstruction (PermaKey) side by side.

    Args:
      logdir: where the writer writes (e.g. RUN_DIR/tensorboard/images).
      frames: uint8 [N, 84, 84, 3], the same frames every epoch.
      overlay: (frames, keypoints_pixels) -> uint8 [H, W, 3]; defaults to viz.overlay_grid.
    """

    def __init__(
        self,
        logdir: os.PathLike | str,
        frames: np.ndarray,
        overlay: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
    ):
        super().__init__()
        self.logdir = Path(logdir)
        self.frames = np.asarray(frames, np.uint8)
        self.overlay = overlay or _default_overlay
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.logdir))

    def on_epoch_end(self, epoch, logs=None):
        self.write(epoch + 1)

    def write(self, step: int) -> None:
        outputs = self.model(self.frames, training=False)
        outputs = {k: np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(v, "float32")))
                   for k, v in outputs.items()}
        overlay = np.asarray(self.overlay(self.frames, outputs["keypoints_pixels"]), np.uint8)
        panels = map_panels(self.frames, outputs)
        with self._writer.as_default(step=step):
            tf.summary.image("keypoints", overlay[None], max_outputs=1)
            tf.summary.image("maps", panels[None], max_outputs=1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


# ----------------------------------------------------------------------------- statistics


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before every validation inside ``fit`` (so validation, the epoch's checkpoint, the
    TensorBoard panels and the export all see them), recomputes the model's BatchNorm moving
    statistics as the plain average over ``batches`` with the current weights
    (``batch_norm.recompute_statistics`` through ``model.statistics_pass``).

    Args:
      batches: a finite iterable of training batches (the same ones every time, so that resumed
        and uninterrupted runs agree).
    """

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.averaged = 0

    def on_test_begin(self, logs=None):
        from permakey_tf.batch_norm import recompute_statistics

        self.averaged = recompute_statistics(self.model, self.model.statistics_pass, self.batches)


# ----------------------------------------------------------------------------- checkpoints


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
                _atomic_json(self.record_path, {"val_loss": value, "epoch": epoch + 1, "metric": "val_loss"})
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
        _atomic_json(folder / "state.json", state)
        previous = read_latest(self.backup_dir, missing_ok=True)
        _atomic_json(self.backup_dir / "latest.json", {"folder": folder.name})
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
        folder = backup_dir / json.loads(pointer.read_text())["folder"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptBackupError(
            f"The resume pointer {pointer} is corrupt ({error!r}). Delete {backup_dir} to restart "
            "the run from scratch, or start a new run."
        ) from None
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
