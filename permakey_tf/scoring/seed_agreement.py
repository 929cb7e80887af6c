"""How closely several runs (seeds) place their keypoints on the same frames (pure numpy).

The paper calls its keypoints "stable across different runs" from a picture of five seeds'
keypoints overlaid. This module turns that picture into numbers: for two runs a and b with
keypoints ``[N, K, 2]`` (x, y) pixels on the same N frames, the *set distance* is the mean over
frames of the symmetric nearest-keypoint distance

    d(a, b) = 1/2 (mean_k min_j |a_k - b_j| + mean_j min_k |b_j - a_k|)

(a Chamfer distance, in pixels; the runs may have different K and their keypoints need not be in
the same order, since keypoint identities are arbitrary per run). It is 0 when both runs put
keypoints on the same points of every frame.

:func:`seed_agreement` gives it for every pair of runs and for two references computed the same
way: each run's own fixed layout (every keypoint at its mean position; agreement that does not
need per-frame keypoints) and K uniform random points per frame and run (the distance of runs that
share nothing). Runs agree beyond chance when their distance is well below the random one.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping

import numpy as np

from permakey_tf.scoring.baselines import fixed_layout_keypoints, random_keypoints
from permakey_tf.scoring.matching import _check_keypoints


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, Ka, Kb]`` distances (pixels) between the keypoints of two runs on each frame."""
    a, b = _check_keypoints(a), _check_keypoints(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the runs' keypoints must be on the same frames: {a.shape[0]} vs "
                         f"{b.shape[0]} frames")
    return np.linalg.norm(a[:, :, None, :] - b[:, None, :, :], axis=-1)


def nearest_keypoint_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, Ka]``: for each frame and each keypoint of ``a`` ``[N, Ka, 2]``, the distance (pixels)
    to the nearest keypoint of ``b`` ``[N, Kb, 2]`` on the same frame."""
    return _pairwise_distances(a, b).min(axis=2)


def set_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The symmetric nearest-keypoint (Chamfer) distance between two runs' keypoints on the same
    frames, averaged over frames, in pixels (module docstring)."""
    pairwise = _pairwise_distances(a, b)
    return float(0.5 * (pairwise.min(axis=2).mean() + pairwise.min(axis=1).mean()))


@dataclasses.dataclass(frozen=True)
class SeedAgreement:
    """Set distances between runs on the same frames, pixels (lower = closer).

    Attributes:
      labels: the runs, in order (e.g. "seed 0").
      pairwise: ``[S, S]`` set distances between the runs' keypoints (0 on the diagonal).
      model: mean of ``pairwise`` over the S (S - 1) / 2 pairs.
      worst_pair: the largest pairwise distance.
      fixed_layout: the same mean between the runs' own fixed layouts.
      random: the same mean between K uniform random points per frame per run.
    """

    labels: tuple[str, ...]
    pairwise: np.ndarray
    model: float
    worst_pair: float
    fixed_layout: float
    random: float

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "pairwise": self.pairwise.round(3).tolist(),
                "model": self.model, "worst_pair": self.worst_pair,
                "fixed_layout": self.fixed_layout, "random": self.random}


def _mean_over_pairs(sets: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
    count = len(sets)
    pairwise = np.zeros((count, count))
    for i, j in itertools.combinations(range(count), 2):
        pairwise[i, j] = pairwise[j, i] = set_distance(sets[i], sets[j])
    upper = pairwise[np.triu_indices(count, k=1)]
    return pairwise, float(upper.mean()), float(upper.max())


def seed_agreement(keypoints_by_run: Mapping[str, np.ndarray], seed: int = 0,
                   image_size: int = 84) -> SeedAgreement:
    """Set distances between every pair of runs, beside their fixed layouts and random points.

    Args:
      keypoints_by_run: label -> ``[N, K, 2]`` (x, y) pixels, every run on the same N frames
        (K may differ between runs).
      seed: seed of the random points (run i draws with ``seed + i``).
      image_size: side of the frames, pixels (the random points' range).
    Raises:
      ValueError: fewer than two runs, or runs on different numbers of frames.
    """
    labels = tuple(keypoints_by_run)
    if len(labels) < 2:
        raise ValueError(f"seed agreement compares runs: got {len(labels)}, need at least 2")
    sets = [_check_keypoints(np.asarray(keypoints_by_run[label], np.float64)) for label in labels]
    pairwise, model, worst = _mean_over_pairs(sets)
    _, fixed, _ = _mean_over_pairs([fixed_layout_keypoints(k) for k in sets])
    randoms = [random_keypoints(k.shape[0], k.shape[1], seed + i, image_size) for i, k in enumerate(sets)]
    _, random, _ = _mean_over_pairs(randoms)
    return SeedAgreement(labels, pairwise, model, worst, fixed, random)
