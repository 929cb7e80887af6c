"""Keypoint quality during training: are the keypoints learning, not only the losses falling?

Each epoch :class:`KeypointQuality` runs the model on a fixed set of validation frames with their
ground-truth objects and writes to TensorBoard (``quality/...``) and to the console:

  f1, fixed_layout_f1        keypoints vs objects, and the model's own mean layout on every frame
  recall, recall_class/<c>   objects found (per class)
  border_share, hud_share    keypoints on the frame's edge / on the score
  shift_gain                 how far keypoints follow content moved by a few pixels (1 ideal, 0 fixed)
  probe_r2                   linear probe from keypoints to object positions (<= 0 for a fixed layout)
  pointnet_loss_ratio        PermaKey: its PointNet loss over that of its fixed layout (< 1 pays)
  moving_error_coverage_gain PermaKey: the share of the error that moves under the keypoints, minus
                             the same share under their fixed layout (> 0: they follow what moves)

See permakey_tf.scoring.metrics and permakey_tf.scoring.diagnostics for the definitions.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from permakey_tf.scoring import baselines, diagnostics, matching, metrics
from permakey_tf.models.pointnet import pointnet_frame_losses_of_pixels

SUMMARY_KEYS = ("f1", "fixed_layout_f1", "recall", "border_share", "hud_share", "shift_gain",
                "probe_r2", "pointnet_loss_ratio", "moving_error_coverage_gain")


@dataclasses.dataclass
class QualitySet:
    """Frames with their objects, in episode order.

    Attributes:
      frames: ``[N, S, S, 3]`` uint8 (noise included, as the model sees them).
      objects: their objects.
      episode_ids, steps: ``[N]``.
    """

    frames: np.ndarray
    objects: matching.ObjectSet
    episode_ids: np.ndarray
    steps: np.ndarray


def quality_set_from_batches(batches, count: Optional[int] = None,
                             class_names=None) -> QualitySet:
    """A QualitySet from ``permakey_tf.data.pipelines.evaluation_batches`` output; ``count`` frames spread
    evenly over the whole set (all when None or larger)."""
    frames, episodes, steps, objects = [], [], [], []
    for batch in batches.as_numpy_iterator():
        for i in range(len(batch["image"])):
            n = int(batch["num_objects"][i])
            objects.append({key: batch["objects"][key][i, :n] for key in batch["objects"]})
        frames.append(batch["noisy_image"])
        episodes.append(batch["episode_id"])
        steps.append(batch["step"])
    frames = np.concatenate(frames)
    index = np.arange(len(frames))
    if count is not None and count < len(frames):
        index = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    return QualitySet(frames[index], matching.ObjectSet.from_frames([objects[i] for i in index], class_names),
                      np.concatenate(episodes)[index], np.concatenate(steps)[index])


def traced_predict_keypoints(model: keras.Model):
    """``model.predict_keypoints`` as a tf.function, traced on first use and kept on the model
    (untracked, never saved): the callbacks measure every epoch, and an eager call of the whole
    network costs about twice the graph's time on a 2-core CPU."""
    traced = getattr(model, "_traced_predict_keypoints", None)
    if traced is None:
        traced = tf.function(model.predict_keypoints, reduce_retracing=True)
        object.__setattr__(model, "_traced_predict_keypoints", traced)
    return traced


def model_outputs(model: keras.Model, frames: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """``keypoints_pixels`` and (PermaKey) ``error_maps`` of ``model.predict_keypoints(frames)``
    (traced once per model: :func:`traced_predict_keypoints`)."""
    predict = traced_predict_keypoints(model)
    keypoints, error_maps = [], []
    for start in range(0, len(frames), batch_size):
        outputs = predict(frames[start:start + batch_size])
        keypoints.append(np.asarray(outputs["keypoints_pixels"], np.float64))
        if "error_maps" in outputs:
            error_maps.append(np.asarray(outputs["error_maps"], np.float16))
    result = {"keypoints_pixels": np.concatenate(keypoints)}
    if error_maps:
        result["error_maps"] = np.concatenate(error_maps)
    return result


def measure_quality(model: keras.Model, data: QualitySet, shift_px: int = 4,
                    settings: matching.MetricSettings = matching.MetricSettings()) -> dict[str, float]:
    """The numbers of the module docstring for one model on one QualitySet."""
    outputs = model_outputs(model, data.frames)
    keypoints = outputs["keypoints_pixels"]
    result = metrics.evaluate_keypoints(keypoints, data.objects, settings,
                                        episode_ids=data.episode_ids, steps=data.steps)
    fixed = metrics.evaluate_keypoints(baselines.fixed_layout_keypoints(keypoints), data.objects, settings)
    result["fixed_layout_f1"] = fixed["f1"]
    if shift_px > 0:
        result.update(diagnostics.shift_equivariance_gain(
            lambda frames: model_outputs(model, frames)["keypoints_pixels"], data.frames, shift_px,
            keypoints=keypoints))
    if "error_maps" in outputs:
        result.update(error_map_scores(keypoints, outputs["error_maps"], model.config))
    return result


def error_map_scores(keypoints: np.ndarray, error_maps: np.ndarray, config) -> dict[str, float]:
    """The label-free scores of PermaKey keypoints ``[N, K, 2]`` (pixels) on their error maps
    ``[N, S, S, L]``, each beside its fixed layout's: ``diagnostics.pointnet_loss_ratio`` with the
    model's own loss (``config``: its PermaKeyConfig) and ``diagnostics.moving_error_coverage``."""
    result = diagnostics.pointnet_loss_ratio(
        keypoints, error_maps, functools.partial(pointnet_frame_losses_of_pixels, config=config))
    result.update(diagnostics.moving_error_coverage(keypoints, error_maps, config.keypoint_sigma))
    return result


def format_quality(values: dict) -> str:
    """One console line: the SUMMARY_KEYS and the per-class recalls."""
    parts = [f"{key} {values[key]:.3f}" for key in SUMMARY_KEYS if key in values]
    parts += [f"{key.split('/', 1)[1]} {value:.2f}" for key, value in sorted(values.items())
              if key.startswith("recall_class/") and np.isfinite(value)]
    return "keypoints: " + " | ".join(parts)


class KeypointQuality(keras.callbacks.Callback):
    """Measures keypoint quality on a QualitySet every ``every_epochs`` epochs (and after the
    last) and writes ``quality/<name>`` scalars with its own writer (step = completed epochs).

    Args:
      logdir: e.g. RUN_DIR/tensorboard/quality.
      data: the frames and objects (e.g. 256 validation frames).
      shift_px: the shift-equivariance check's shift (0 = skip, saves 4 forward passes).
      stream: where the console line goes (None = stdout; False = nowhere).
    """

    def __init__(self, logdir: os.PathLike | str, data: QualitySet, shift_px: int = 4,
                 every_epochs: int = 1, stream=None):
        super().__init__()
        self.logdir = Path(logdir)
        self.data = data
        self.shift_px = int(shift_px)
        self.every_epochs = max(1, int(every_epochs))
        self.stream = sys.stdout if stream is None else stream
        self.last: dict[str, float] = {}
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.logdir))

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_epochs and epoch + 1 != last_epoch:
            return
        self.last = measure_quality(self.model, self.data, self.shift_px)
        with self._writer.as_default(step=epoch + 1):
            for key, value in self.last.items():
                if key.startswith(("num_", "targets_per_frame", "probe_variables", "shift_gain_count")):
                    continue
                if np.isfinite(value):
                    tf.summary.scalar(f"quality/{key}", value)
        self._writer.flush()
        if self.stream:
            print(format_quality(self.last), file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
