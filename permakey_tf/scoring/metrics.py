"""Keypoint <-> object metrics of a whole evaluation set, beside the baselines (pure numpy).

The paper shows keypoints only in pictures; the dataset knows where every object is, so this module
turns "do the keypoints sit on objects?" into numbers (docs/BACKGROUND.md section 8). The pieces
live in their own modules: ``permakey_tf.scoring.matching`` (settings, objects, hits, per-frame metrics),
``permakey_tf.scoring.stability`` (consecutive frames), ``permakey_tf.scoring.rows`` (objects in
rows), ``permakey_tf.scoring.baselines`` (fixed layout, random, grid, frame difference); this module adds the object-position probe and the whole-set evaluation.

Conventions (keypoints, boxes, hits, target groups): the docstring of permakey_tf.scoring.matching.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np

from permakey_tf.scoring import probe
from permakey_tf.scoring.detection_score import detection_scores
from permakey_tf.scoring.baselines import baseline_keypoints
from permakey_tf.scoring.rows import row_coverage
from permakey_tf.scoring.matching import (
    MetricSettings, ObjectSet, _check_keypoints, _f1, _safe_div, frame_metrics, hit_matrix, object_centres,
    target_mask)
from permakey_tf.scoring.stability import stability_metrics

# --------------------------------------------------------------------------------------------------
# Linear probe from keypoints to object positions


def class_positions(objects: ObjectSet, settings: MetricSettings = MetricSettings()) -> dict[str, np.ndarray]:
    """Per target class, the mean box centre of its targets in each frame.

    For a class with one object per frame (a player, a ball) that is the object's position; for a
    group (an alien formation) the group's centroid.

    Returns:
      ``{"<class>_x": [N], "<class>_y": [N]}`` pixels, NaN in frames without that class.
    """
    targets = target_mask(objects, settings)
    centres = object_centres(objects.boxes, settings.image_size)  # [N, M, 2]
    positions = {}
    for label in np.unique(objects.labels[targets]):
        of_class = targets & (objects.labels == label)
        count = of_class.sum(1)
        with np.errstate(invalid="ignore"):
            mean = (centres * of_class[..., None]).sum(1) / count[:, None]
        mean[count == 0] = np.nan
        name = objects.class_name(label)
        positions[f"{name}_x"], positions[f"{name}_y"] = mean[:, 0], mean[:, 1]
    return positions


def position_probe(
    keypoints: np.ndarray,
    objects: ObjectSet,
    episode_ids: np.ndarray,
    steps: np.ndarray,
    settings: MetricSettings = MetricSettings(),
) -> dict[str, float]:
    """R^2 of a linear probe from the 2K keypoint coordinates of a frame to its objects'
    positions (:func:`class_positions`), fitted on one half of the episodes and scored on the
    other (:mod:`permakey_tf.scoring.probe`).

    Returns:
      ``probe_r2`` (mean over the variables that qualified; a fixed layout scores <= 0),
      ``probe_r2/<class>`` (mean of its x and y), ``probe_variables`` (how many qualified).
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    fit_mask = probe.split_by_episode(episode_ids, steps)
    scores = probe.probe_r2(keypoints.reshape(len(keypoints), -1), class_positions(objects, settings),
                            fit_mask)
    result = {"probe_r2": float(np.mean(list(scores.values()))) if scores else math.nan,
              "probe_variables": float(len(scores))}
    for name in sorted({key.rsplit("_", 1)[0] for key in scores}):
        values = [scores[f"{name}_{axis}"] for axis in ("x", "y") if f"{name}_{axis}" in scores]
        result[f"probe_r2/{name}"] = float(np.mean(values))
    return result


# --------------------------------------------------------------------------------------------------
# Whole evaluation set


def _share_hit_by_class(hits: np.ndarray, objects: ObjectSet, mask: np.ndarray) -> dict[str, float]:
    """Per class of the objects in ``mask`` ([N, M] bool): the share of them under at least one
    keypoint (``hits`` [N, K, M])."""
    hit = hits.any(1) & mask
    return {objects.class_name(label): _safe_div((hit & (objects.labels == label)).sum(),
                                                   (mask & (objects.labels == label)).sum())
            for label in np.unique(objects.labels[mask])}


def evaluate_keypoints(
    keypoints: np.ndarray,
    objects: ObjectSet,
    settings: MetricSettings = MetricSettings(),
    bar_masks: Optional[np.ndarray] = None,
    episode_ids: Optional[np.ndarray] = None,
    steps: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """All metrics of one keypoint set over an evaluation set, as a flat dict of floats.

    Recall and precision are pooled over frames (objects found / objects, keypoints on targets /
    (N K)); F1 combines the pooled values; ``f1_frame_mean`` averages per-frame F1 over frames
    with targets. Class-macro recall averages the pooled recall of each class present; each
    class's recall is also given as ``recall_class/<name>``. ``coverage_class/<name>`` is the same
    share for every recorded class, targets or not (HUD, static objects such as shields): which
    objects the keypoints sit on at all; for classes that come in rows (an alien formation),
    ``coverage_row/<name>/<r>`` and ``row_coverage_spread/<name>`` say which rows
    (:mod:`permakey_tf.scoring.rows`). Undefined values are NaN (see :func:`json_ready`).

    Args:
      keypoints: ``[N, K, 2]`` ``(x, y)`` pixels.
      objects: the N frames' objects.
      settings: matching rules.
      bar_masks: optional ``[N, H, W]`` bool; adds ``bar_share``.
      episode_ids, steps: optional ``[N]``; add the stability metrics of
        :func:`stability_metrics` and the object-position probe of :func:`position_probe`.
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    n, k = keypoints.shape[:2]
    hits = hit_matrix(keypoints, objects, settings)
    targets = target_mask(objects, settings)
    found = hits.any(1) & targets  # [N, M]
    per_frame = frame_metrics(keypoints, objects, settings, bar_masks)
    recall = _safe_div(found.sum(), targets.sum())
    precision = _safe_div((hits & targets[:, None]).any(2).sum(), n * k)
    result = {
        "num_frames": float(n),
        "num_keypoints": float(k),
        "targets_per_frame": _safe_div(targets.sum(), n),
        "recall": recall,
        "precision": precision,
        "f1": _f1(precision, recall),
        "precision_any": _safe_div(hits.any(2).sum(), n * k),
        "hud_share": float(per_frame["hud_share"].mean()) if n else math.nan,
        "border_share": float(per_frame["border_share"].mean()) if n else math.nan,
    }
    with_targets = ~np.isnan(per_frame["f1"])
    result["f1_frame_mean"] = float(per_frame["f1"][with_targets].mean()) if with_targets.any() else math.nan
    class_recalls = _share_hit_by_class(hits, objects, targets)
    result.update({f"recall_class/{name}": value for name, value in class_recalls.items()})
    result["recall_class_macro"] = float(np.mean(list(class_recalls.values()))) if class_recalls else math.nan
    coverage = _share_hit_by_class(hits, objects, objects.valid)
    result.update({f"coverage_class/{name}": value for name, value in coverage.items()})
    result.update(row_coverage(hits, objects, settings.image_size))
    result.update(detection_scores(keypoints, objects, settings))
    if bar_masks is not None:
        result["bar_share"] = float(per_frame["bar_share"].mean()) if n else math.nan
    if episode_ids is not None and steps is not None:
        result.update(stability_metrics(keypoints, objects, episode_ids, steps, settings))
        result.update(position_probe(keypoints, objects, episode_ids, steps, settings))
    return result


def json_ready(values):
    """Replaces NaN / inf floats by None, recursively, so that strict JSON parsers accept it."""
    if isinstance(values, Mapping):
        return {str(k): json_ready(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [json_ready(v) for v in values]
    if isinstance(values, (float, np.floating)):
        return float(values) if math.isfinite(values) else None
    if isinstance(values, np.integer):
        return int(values)
    return values


def evaluate_with_baselines(
    model_keypoints: np.ndarray,
    objects: ObjectSet,
    settings: MetricSettings = MetricSettings(),
    frames: Optional[np.ndarray] = None,
    bar_masks: Optional[np.ndarray] = None,
    episode_ids: Optional[np.ndarray] = None,
    steps: Optional[np.ndarray] = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of the model's keypoints and of every baseline, by the same code.

    Returns:
      ``{"model": {...}, "fixed_layout": {...}, "random": {...}, "grid": {...},
      "frame_difference": {...}}`` (the last only with frames, episode ids and steps), each a
      flat dict from :func:`evaluate_keypoints`.
    """
    sets = {"model": _check_keypoints(model_keypoints, objects.num_frames)}
    sets.update(baseline_keypoints(model_keypoints, frames, episode_ids, steps, seed,
                                   settings.image_size))
    return {
        name: evaluate_keypoints(kps, objects, settings, bar_masks, episode_ids, steps)
        for name, kps in sets.items()
    }
