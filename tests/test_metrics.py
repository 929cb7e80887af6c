"""Keypoint <-> object metrics (permakey_tf.scoring.matching and .metrics) on hand-made frames."""

import json
import math

import numpy as np
import pytest

from permakey_tf.scoring import matching, metrics
from permakey_tf.scoring.matching import MetricSettings, ObjectSet

from object_boxes import SIZE, SMALL, box, kps, one_frame


def test_keypoint_on_centre_hits():
    result = metrics.evaluate_keypoints(kps((41, 31)), one_frame([SMALL]))
    assert result["recall"] == 1.0 and result["precision"] == 1.0 and result["f1"] == 1.0


def test_keypoint_four_pixels_from_small_object_misses_at_r3_but_hits_at_r5():
    # 4 px right of the centre, 3 px right of the box edge: outside radius 3 and dilation 1.
    objects = one_frame([SMALL])
    assert metrics.evaluate_keypoints(kps((45, 31)), objects)["recall"] == 0.0
    wide = MetricSettings(hit_radius=5)
    assert metrics.evaluate_keypoints(kps((45, 31)), objects, wide)["recall"] == 1.0


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


def test_coverage_counts_every_recorded_class_where_recall_counts_targets():
    names = ("Player", "Shield", "Score")
    # The player, two shields (static by class name) and the score (HUD), on two frames.
    frame = {"bbox": np.array([SMALL, box(60, 10, 64, 16), box(60, 40, 64, 46), box(0, 0, 4, 10)]),
             "label": np.array([0, 1, 1, 2]), "is_hud": np.array([False, False, False, True]),
             "is_static": np.zeros(4, bool)}
    objects = ObjectSet.from_frames([frame, frame], names)
    # Frame 0: on the player, the first shield and the score; frame 1: off the player, between
    # the shields, on the score.
    points = np.array([[(41, 31), (62, 13), (5, 2)], [(80, 80), (40, 10), (5, 2)]], float)
    result = metrics.evaluate_keypoints(points, objects)
    assert result["recall_class/Player"] == pytest.approx(1 / 2)
    assert "recall_class/Shield" not in result and "recall_class/Score" not in result
    assert result["coverage_class/Player"] == pytest.approx(1 / 2)
    assert result["coverage_class/Shield"] == pytest.approx(1 / 4)
    assert result["coverage_class/Score"] == 1.0


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


def test_json_ready_replaces_nan():
    values = {"a": math.nan, "b": np.float32(0.5), "c": [math.inf, 1]}
    assert json.loads(json.dumps(metrics.json_ready(values))) == {"a": None, "b": 0.5, "c": [None, 1]}
