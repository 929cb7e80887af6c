"""The one-to-one detection score (permakey_tf.scoring.detection_score)."""

import numpy as np
import pytest

from permakey_tf.scoring.detection_score import detection_scores, greedy_matches
from permakey_tf.scoring.matching import ObjectSet

SIZE = 84.0


def _objects(frames):
    """frames: per frame a list of (x0, y0, x1, y1, is_hud) boxes in pixels."""
    width = max(len(f) for f in frames)
    boxes = np.zeros((len(frames), width, 4))
    valid = np.zeros((len(frames), width), bool)
    hud = np.zeros((len(frames), width), bool)
    for i, frame in enumerate(frames):
        for j, (x0, y0, x1, y1, is_hud) in enumerate(frame):
            boxes[i, j] = np.array([y0, x0, y1, x1]) / SIZE
            valid[i, j] = True
            hud[i, j] = is_hud
    return ObjectSet(boxes, np.zeros(valid.shape, np.int64), valid, hud, np.zeros(valid.shape, bool))


def test_keypoints_on_every_object_centre_find_all_and_spare_ones_cost_precision():
    objects = _objects([[(10, 10, 16, 18, False), (50, 60, 54, 64, False)]])
    keypoints = np.array([[[13, 14], [52, 62], [80, 5], [5, 80]]], float)
    scores = detection_scores(keypoints, objects)
    assert scores["detection_recall"] == 1.0
    assert scores["detection_precision"] == 0.5  # 2 of 4 keypoints
    assert scores["detection_precision_cap"] == 0.5  # no 4 keypoints can do better on 2 objects
    assert scores["detection_f1"] == pytest.approx(2 / 3)


def test_matching_is_one_to_one_and_within_half_the_box_diagonal():
    # A 6 x 8 box: half diagonal 5 pixels from its centre (13, 14).
    objects = _objects([[(10, 10, 16, 18, False)]])
    two_on_one = np.array([[[13, 14], [14, 15]]], float)
    assert detection_scores(two_on_one, objects)["detection_precision"] == 0.5
    just_inside = np.array([[[13 + 4.9, 14]]], float)
    just_outside = np.array([[[13 + 5.1, 14]]], float)
    assert detection_scores(just_inside, objects)["detection_recall"] == 1.0
    assert detection_scores(just_outside, objects)["detection_recall"] == 0.0


def test_hud_objects_are_left_out():
    objects = _objects([[(10, 10, 16, 18, False), (40, 2, 60, 8, True)]])
    on_score = np.array([[[50, 5]]], float)
    scores = detection_scores(on_score, objects)
    assert scores["detection_recall"] == 0.0 and scores["detection_precision"] == 0.0


def test_greedy_takes_the_nearest_pair_first():
    # Keypoint 0 is nearest object 1; keypoint 1 is admissible for object 1 only.
    distances = np.array([[3.0, 1.0], [9.0, 2.0]])
    admissible = np.array([[True, True], [False, True]])
    assert greedy_matches(distances, admissible) == 1  # (0, 1) taken first, keypoint 1 left alone
    assert greedy_matches(distances, np.ones((2, 2), bool)) == 2
