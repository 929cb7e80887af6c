"""permakey_tf.scoring.stability: keypoint jitter and tracking between consecutive frames of an
episode, on a hand-made moving square."""

import numpy as np
import pytest

from permakey_tf.scoring import stability
from permakey_tf.scoring.matching import ObjectSet

from object_boxes import box


def _moving_square_episode(num_frames=6, speed=2, start=20, follow=True, jitter=0.0, seed=0):
    """A 2x2 square moving right by `speed` px per step; one keypoint per frame."""
    rng = np.random.default_rng(seed)
    boxes, points = [], []
    for t in range(num_frames):
        x = start + speed * t
        boxes.append({"bbox": np.array([box(x, 40, x + 2, 42)]), "label": np.array([0])})
        kx = (x + 1 if follow else start + 1) + rng.uniform(-jitter, jitter)
        points.append([[kx, 41.0]])
    return ObjectSet.from_frames(boxes), np.array(points), np.zeros(num_frames, int), np.arange(num_frames)


def test_stability_follower_vs_fixed_point():
    objects, follower, eps, steps = _moving_square_episode(speed=1, follow=True)
    stable = stability.stability_metrics(follower, objects, eps, steps)
    assert stable["num_pairs"] == 5 and stable["num_tracked"] == 5
    assert stable["jitter_px"] == pytest.approx(1.0)
    assert stable["object_motion_px"] == pytest.approx(1.0)
    assert stable["tracking_error_relative"] == pytest.approx(0.0, abs=1e-9)
    objects, still, eps, steps = _moving_square_episode(speed=1, follow=False)
    fixed = stability.stability_metrics(still, objects, eps, steps)
    assert fixed["jitter_px"] == 0.0
    # The still point only sits on the object while the object covers it (first frames).
    assert fixed["tracking_error_relative"] == pytest.approx(1.0)


def test_stability_pairs_only_within_an_episode():
    first, second = stability.consecutive_pairs(np.array([0, 0, 1, 1, 0]), np.array([0, 1, 2, 3, 3]))
    assert sorted(zip(first.tolist(), second.tolist())) == [(0, 1), (2, 3)]


def test_stability_is_the_same_when_pairs_are_processed_in_chunks(monkeypatch):
    objects, points, eps, steps = _moving_square_episode(num_frames=9, speed=1, jitter=1.0)
    whole = stability.stability_metrics(points, objects, eps, steps)
    monkeypatch.setattr(stability, "_PAIR_CHUNK", 2)
    assert stability.stability_metrics(points, objects, eps, steps) == pytest.approx(whole, nan_ok=True)
    assert whole["num_tracked"] > 0
