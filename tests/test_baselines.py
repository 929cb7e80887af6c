"""permakey_tf.scoring.baselines: random, grid, fixed-layout and frame-difference keypoints, their
chance levels, and every baseline through the same metrics code."""

import numpy as np
import pytest

from permakey_tf.scoring import baselines, metrics
from permakey_tf.scoring.matching import ObjectSet

from object_boxes import SIZE, SMALL, box


def test_random_points_rarely_hit_one_small_object_and_are_seeded():
    n, k = 400, 8
    objects = ObjectSet.from_frames([{"bbox": np.array([SMALL]), "label": np.array([0])}] * n)
    points = baselines.random_keypoints(n, k, seed=3)
    assert np.array_equal(points, baselines.random_keypoints(n, k, seed=3))
    assert not np.array_equal(points, baselines.random_keypoints(n, k, seed=4))
    assert points.min() >= 0 and points.max() < SIZE
    result = metrics.evaluate_keypoints(points, objects)
    # Hit area: disc r=3 ∪ dilated 4x4 box ≈ 30 px of 7056: p ≈ 0.004 per point.
    assert result["precision"] < 0.02
    expected_recall = 1 - (1 - 30 / SIZE**2) ** k
    assert result["recall"] == pytest.approx(expected_recall, abs=0.03)


def test_grid_layout_covers_the_frame_evenly():
    layout = baselines.grid_layout(9)
    assert sorted(set(layout[:, 0].round(3))) == pytest.approx([14, 42, 70])
    assert baselines.grid_layout(8).shape == (8, 2)
    assert np.all(baselines.grid_keypoints(5, 8)[3] == baselines.grid_layout(8))


def test_fixed_layout_is_the_mean_position_on_every_frame():
    points = np.array([[[10, 20], [30, 40]], [[20, 40], [50, 60]]], float)
    fixed = baselines.fixed_layout_keypoints(points)
    assert np.allclose(fixed[0], [[15, 30], [40, 50]]) and np.allclose(fixed[1], fixed[0])


def _square_video(num_frames=6, num_episodes=2, size=SIZE):
    """A 4x4 white square moving diagonally on black, plus a static grey HUD bar."""
    frames = np.zeros([num_episodes * num_frames, size, size, 3], np.uint8)
    frames[:, 2:6, 10:40] = 128  # static: never differs
    boxes, eps, steps = [], [], []
    for e in range(num_episodes):
        for t in range(num_frames):
            i = e * num_frames + t
            x, y = 20 + 3 * t + 10 * e, 30 + 2 * t
            frames[i, y:y + 4, x:x + 4] = 255
            boxes.append({"bbox": np.array([box(x, y, x + 4, y + 4)]), "label": np.array([0])})
            eps.append(e)
            steps.append(t)
    return frames, ObjectSet.from_frames(boxes), np.array(eps), np.array(steps)


def test_frame_difference_blobs_find_a_moving_square():
    frames, objects, eps, steps = _square_video()
    points = baselines.frame_difference_keypoints(frames, eps, steps, num_keypoints=3)
    assert points.shape == (len(frames), 3, 2)
    result = metrics.evaluate_keypoints(points, objects)
    assert result["recall"] == 1.0
    assert result["precision"] > 0.9
    # Shuffling the frame order changes nothing: neighbours come from (episode, step).
    order = np.random.default_rng(0).permutation(len(frames))
    shuffled = baselines.frame_difference_keypoints(frames[order], eps[order], steps[order], 3)
    assert np.allclose(shuffled, points[order])


def test_frame_difference_without_motion_falls_back_to_the_grid():
    frames = np.zeros([3, SIZE, SIZE, 3], np.uint8)
    points = baselines.frame_difference_keypoints(frames, np.zeros(3), np.arange(3), 4)
    assert np.allclose(points, baselines.grid_keypoints(3, 4))


def test_evaluate_with_baselines_runs_every_baseline_through_the_same_code():
    frames, objects, eps, steps = _square_video()
    model = np.repeat(np.array([[[50.0, 10.0]] * 4]), len(frames), axis=0)  # never on the square
    results = metrics.evaluate_with_baselines(model, objects, frames=frames, episode_ids=eps,
                                              steps=steps, seed=0)
    assert set(results) == {"model", *baselines.BASELINE_NAMES}
    assert results["model"]["recall"] == 0.0
    assert results["fixed_layout"]["recall"] == 0.0  # a constant model equals its fixed layout
    assert results["frame_difference"]["recall"] == 1.0
    assert results["model"]["jitter_px"] == 0.0
