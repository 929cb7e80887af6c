"""TensorBoard callbacks: scalars per step and per epoch, keypoint overlays and map panels.

Each writes with its own ``tf.summary`` writer and an explicit *global* step (docs/BACKGROUND.md
section 6: ``tf.summary`` inside a custom ``train_step`` logs at step 0 before Keras 3.15), so a
resumed run continues the curves where the interrupted one stopped. Epoch numbers count
completed epochs (1 = after the first).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from permakey_tf.training.run_state import scalar_logs, global_step, learning_rates


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
        values = scalar_logs(logs)
        values.update(learning_rates(self.model))
        with self._train_writer.as_default(step=self._step):
            for name, value in values.items():
                tf.summary.scalar(f"step/{name}", value)

    def on_epoch_end(self, epoch, logs=None):
        scalars = scalar_logs(logs)
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
