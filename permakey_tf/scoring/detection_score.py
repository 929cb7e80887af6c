"""Keypoints scored as object detections, by the rule published object-discovery work uses (numpy).

Object-discovery models on Atari (SPACE, and SPACE with motion and object continuity, Delfosse et
al. 2023) are scored by matching predicted object centres to ground-truth objects one to one. This
module scores keypoints the same way, so that a number here can be set beside theirs:

* a keypoint can match an object when it lies within half the object's box diagonal of the box
  centre (in the 84x84 frame; boxes are normalised, so this is the same relative rule at any
  resolution);
* matching is one to one and greedy: all admissible (keypoint, object) pairs of a frame, nearest
  first; a pair is taken when neither side is taken yet;
* objects are the evaluation targets of ``permakey_tf.scoring.matching.target_mask``: HUD elements (score,
  lives) are left out, as in the published rule, and so are static background classes (walls,
  shields, bricks, pills), as in every other score of this project;
* precision = matched keypoints / all keypoints, recall = matched objects / objects, pooled over
  the frames; F-score = their harmonic mean.

Unlike a detector, a keypoint model always places K points: in a frame with fewer than K targets
precision cannot reach 1. ``detection_precision_cap`` is the best precision any K points could get
on the same frames (mean of min(1, targets / K)), to read the precision against.
"""

from __future__ import annotations

import math

import numpy as np

from permakey_tf.scoring.matching import MetricSettings, ObjectSet, _check_keypoints, _f1, _safe_div, object_centres, target_mask


def greedy_matches(distances: np.ndarray, admissible: np.ndarray) -> int:
    """How many one-to-one pairs greedy matching takes, nearest first.

    Args:
      distances: ``[K, M]`` keypoint-to-object distances.
      admissible: ``[K, M]`` bool, pairs that may match.
    """
    rows, cols = np.nonzero(admissible)
    order = np.argsort(distances[rows, cols], kind="stable")
    used_rows, used_cols = set(), set()
    for index in order:
        row, col = int(rows[index]), int(cols[index])
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
    return len(used_rows)


def detection_scores(keypoints: np.ndarray, objects: ObjectSet,
                     settings: MetricSettings = MetricSettings()) -> dict[str, float]:
    """The module docstring's scores for ``[N, K, 2]`` (x, y) pixel keypoints on N frames.

    Returns:
      ``detection_precision``, ``detection_recall``, ``detection_f1`` (NaN without targets) and
      ``detection_precision_cap``.
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    n, k = keypoints.shape[:2]
    targets = target_mask(objects, settings)
    size = settings.image_size
    centres = object_centres(objects.boxes, size)  # [N, M, 2]
    pixels = objects.boxes * size
    half_diagonal = 0.5 * np.hypot(pixels[..., 2] - pixels[..., 0], pixels[..., 3] - pixels[..., 1])  # [N, M]
    distances = np.linalg.norm(keypoints[:, :, None, :] - centres[:, None, :, :], axis=-1)  # [N, K, M]
    admissible = (distances <= half_diagonal[:, None, :]) & targets[:, None, :]
    matched = sum(greedy_matches(distances[i], admissible[i]) for i in range(n) if admissible[i].any())
    num_targets = targets.sum()
    precision = _safe_div(matched, n * k) if num_targets else math.nan
    recall = _safe_div(matched, num_targets)
    cap = float(np.mean(np.minimum(1.0, targets.sum(1) / k))) if n and k else math.nan
    return {
        "detection_precision": precision,
        "detection_recall": recall,
        "detection_f1": _f1(precision, recall),
        "detection_precision_cap": cap,
    }
