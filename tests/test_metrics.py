"""Keypoint <-> object metrics on hand-made frames, and the baselines' chance levels."""

import json
import math

import numpy as np
import pytest

from permakey_tf.scoring import baselines, matching, metrics, stability
from permakey_tf.scoring.matching import MetricSettings, ObjectSet

SIZE = 84


def box(x0, y0, x1, y1):
    """Pixel box (x from x0 to x1, y from y0 to y1) -> normalised (ymin, xmin, ymax, xmax)."""
    return [y0 / SIZE, x0 / SIZE, y1 / SIZE, x1 / SIZE]


def one_frame(boxes, labels=None, hud=None, static=None, class_names=None):
    m = len(boxes)
    return ObjectSet.from_frames(
        [{
            "bbox": np.array(boxes, float).reshape(m, 4),
            "label": np.array(labels if labels is not None else [0] * m),
            "is_hud": np.array(hud if hud is not None else [False] * m),
            "is_static": np.array(static if static is not None else [False] * m),
        }],
        class_names,
    )


def kps(*points):
    return np.array([points], float)  # [1, K, 2]


# A small 2x2 object spanning x in [40, 42], y in [30, 32]: centre (41, 31).
SMALL = box(40, 30, 42, 32)


def test_keypoint_on_centre_hits():
    result = metrics.evaluate_keypoints(kps((41, 31)), one_frame([SMALL]))
    assert result["recall"] == 1.0 and result["precision"] == 1.0 and result["f1"] == 1.0


def test_keypoint_four_pixels_from_small_object_misses_at_r3_but_hits_at_r5():
    # 4 px right of the centre, 3 px right of the box edge: outside radius 3 and dilation 1.
    objects = one_frame([SMALL])
    assert metrics.evaluate_keypoints(kps((45, 31)), objects)["recall"] == 0.0
    wide = MetricSettings(hit_radius=5)
    assert metrics.evaluate_keypoints(kps((45, 31)), objects, wide)["recall"] == 1.0


def test_box_edge_plus_dilation_hits_on_a_large_object():
    # Large box x in [10, 40], y in [10, 20]; centre (25, 15) is far from the test points.
    objects = one_frame([box(10, 10, 40, 20)])
    inside_dilation = kps((40.9, 15))  # 0.9 px right of the edge
    outside_dilation = kps((41.2, 15))
    assert matching.hit_matrix(inside_dilation, objects, MetricSettings())[0, 0, 0]
    assert not matching.hit_matrix(outside_dilation, objects, MetricSettings())[0, 0, 0]
    no_dilation = MetricSettings(box_dilation=0)
    assert not matching.hit_matrix(inside_dilation, objects, no_dilation)[0, 0, 0]


def test_recall_precision_f1_by_hand():
    # Three targets; keypoints: two on the first object, one on the third, one on nothing.
    objects = one_frame([box(5, 5, 7, 7), box(40, 40, 42, 42), box(70, 70, 72, 72)])
    result = metrics.evaluate_keypoints(kps((6, 6), (6.5, 6), (71, 71), (20, 60)), objects)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(2 * (3 / 4) * (2 / 3) / (3 / 4 + 2 / 3))


def test_hud_is_not_a_target_but_its_share_is_reported():
    objects = one_frame([SMALL, box(0, 0, 20, 6)], hud=[False, True])
    result = metrics.evaluate_keypoints(kps((41, 31), (10, 3), (10, 4), (60, 60)), objects)
    assert result["recall"] == 1.0  # the HUD is not an object to find
    assert result["precision"] == pytest.approx(1 / 4)
    assert result["hud_share"] == pytest.approx(2 / 4)
    assert result["precision_any"] == pytest.approx(3 / 4)
    assert result["targets_per_frame"] == 1.0


def test_static_objects_excluded_by_flag_and_by_class_name():
    names = ("Player", "Shield")
    by_flag = one_frame([SMALL, box(60, 60, 70, 66)], labels=[0, 0], static=[False, True],
                        class_names=names)
    by_name = one_frame([SMALL, box(60, 60, 70, 66)], labels=[0, 1], class_names=names)
    for objects in (by_flag, by_name):
        result = metrics.evaluate_keypoints(kps((41, 31), (65, 63)), objects)
        assert result["recall"] == 1.0
        assert result["precision"] == 0.5
        assert result["precision_any"] == 1.0
    # Counting static classes again when the user asks for it.
    keep = MetricSettings(exclude_classes=())
    assert metrics.evaluate_keypoints(kps((41, 31), (65, 63)), by_name, keep)["precision"] == 1.0


def test_include_classes_and_class_macro_recall():
    names = ("Player", "Alien")
    # One player (found) and three aliens (one found).
    objects = one_frame([SMALL, box(5, 5, 7, 7), box(20, 5, 22, 7), box(60, 5, 62, 7)],
                        labels=[0, 1, 1, 1], class_names=names)
    points = kps((41, 31), (6, 6))
    result = metrics.evaluate_keypoints(points, objects)
    assert result["recall"] == pytest.approx(2 / 4)
    assert result["recall_class/Player"] == 1.0
    assert result["recall_class/Alien"] == pytest.approx(1 / 3)
    assert result["recall_class_macro"] == pytest.approx((1 + 1 / 3) / 2)
    aliens = metrics.evaluate_keypoints(points, objects, MetricSettings(include_classes=("alien",)))
    assert aliens["recall"] == pytest.approx(1 / 3) and aliens["precision"] == 0.5
    with pytest.raises(ValueError, match="not classes of this dataset"):
        metrics.evaluate_keypoints(points, objects, MetricSettings(include_classes=("Ghost",)))


def test_bar_share_and_border_share():
    objects = one_frame([SMALL])
    mask = np.zeros([1, SIZE, SIZE], bool)
    mask[0, :, 10:15] = True  # a vertical bar over columns 10..14
    points = kps((12.5, 50), (14.99, 3.5), (15.0, 50), (41, 31), (1.0, 40))
    result = metrics.evaluate_keypoints(points, objects, bar_masks=mask)
    assert result["bar_share"] == pytest.approx(2 / 5)
    assert result["border_share"] == pytest.approx(1 / 5)  # only x = 1.0 is within 3 px of an edge
    # y = 3.5 is 3.5 px from the top edge: on the border once the margin is 4.
    wider = metrics.evaluate_keypoints(points, objects, MetricSettings(border_margin=4))
    assert wider["border_share"] == pytest.approx(2 / 5)
    assert "bar_share" not in metrics.evaluate_keypoints(points, objects)


def test_frame_metrics_has_nan_recall_without_targets_and_pooling_ignores_it():
    frames = ObjectSet.from_frames([
        {"bbox": np.array([SMALL]), "label": np.array([0])},
        {"bbox": np.zeros([0, 4]), "label": np.zeros([0], int)},
    ])
    points = np.array([[[41, 31]], [[41, 31]]], float)
    per_frame = matching.frame_metrics(points, frames)
    assert per_frame["recall"][0] == 1.0 and math.isnan(per_frame["recall"][1])
    result = metrics.evaluate_keypoints(points, frames)
    assert result["recall"] == 1.0 and result["precision"] == 0.5
    assert result["f1_frame_mean"] == 1.0


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match=r"\[N, K, 2\]"):
        metrics.evaluate_keypoints(np.zeros([1, 3]), one_frame([SMALL]))
    with pytest.raises(ValueError, match="cover 2 frames"):
        metrics.evaluate_keypoints(np.zeros([2, 1, 2]), one_frame([SMALL]))
    with pytest.raises(ValueError, match="hit_radius"):
        MetricSettings(hit_radius=-1)


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


def test_json_ready_replaces_nan():
    values = {"a": math.nan, "b": np.float32(0.5), "c": [math.inf, 1]}
    assert json.loads(json.dumps(metrics.json_ready(values))) == {"a": None, "b": 0.5, "c": [None, 1]}


# ---------------------------------------------------------------------------------------------------
# Baselines


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


def test_stability_is_the_same_when_pairs_are_processed_in_chunks(monkeypatch):
    objects, points, eps, steps = _moving_square_episode(num_frames=9, speed=1, jitter=1.0)
    whole = stability.stability_metrics(points, objects, eps, steps)
    monkeypatch.setattr(stability, "_PAIR_CHUNK", 2)
    assert stability.stability_metrics(points, objects, eps, steps) == pytest.approx(whole, nan_ok=True)
    assert whole["num_tracked"] > 0
