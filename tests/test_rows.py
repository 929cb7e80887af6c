"""Row coverage (permakey_tf.scoring.rows) on hand-made formations: which rows of an alien-like
formation the keypoints sit on."""

import math

import numpy as np
import pytest

from permakey_tf.scoring import metrics, rows
from permakey_tf.scoring.matching import MetricSettings, ObjectSet, hit_matrix

from object_boxes import box

ROW_HEIGHTS = (20.0, 27.0, 34.0)  # three rows 7 px apart, as Space Invaders' aliens at 84x84
COLUMNS = (20.0, 32.0, 44.0, 56.0)
ALIEN, PLAYER = 0, 1
NAMES = ("Alien", "Player")


def formation(num_frames, heights=ROW_HEIGHTS, jitter=0.0, seed=0):
    """Frames with a 4-wide formation in the given rows (box centres, 2x2 boxes, heights moved by
    up to ``jitter`` px per object) and one player at the bottom. Returns the ObjectSet and the
    objects' centres per frame ([[(x, y, label)]])."""
    rng = np.random.default_rng(seed)
    frames, centres = [], []
    for _ in range(num_frames):
        frame = [(x, y + rng.uniform(-jitter, jitter), ALIEN) for y in heights for x in COLUMNS]
        frame.append((40.0, 75.0, PLAYER))
        centres.append(frame)
        frames.append({"bbox": np.array([box(x - 1, y - 1, x + 1, y + 1) for x, y, _ in frame]),
                       "label": np.array([label for *_, label in frame])})
    return ObjectSet.from_frames(frames, NAMES), centres


def keypoints_on(centres, choose):
    """Keypoints on the objects that ``choose(x, y, label)`` picks, the same count each frame
    (extra keypoints parked in an empty corner)."""
    picked = [[(x, y) for x, y, label in frame if choose(x, y, label)] for frame in centres]
    k = max(len(p) for p in picked)
    return np.array([p + [(2.0, 82.0)] * (k - len(p)) for p in picked])


def coverage(objects, keypoints):
    return rows.row_coverage(hit_matrix(keypoints, objects, MetricSettings()), objects)


def test_frame_rows_groups_heights_within_the_tolerance_and_numbers_from_the_top():
    assert rows.frame_rows([34.0, 20.0, 27.5, 20.9, 34.4]).tolist() == [2, 0, 1, 0, 2]
    assert rows.frame_rows([10.0, 13.0], row_tolerance=2.0).tolist() == [0, 1]
    assert rows.frame_rows([10.0, 13.0], row_tolerance=3.5).tolist() == [0, 0]
    assert rows.frame_rows([]).tolist() == []


def test_keypoints_crowding_the_top_row_give_a_spread_of_one():
    objects, centres = formation(6)
    result = coverage(objects, keypoints_on(centres, lambda x, y, label: label == ALIEN and y < 24))
    assert [result[f"coverage_row/Alien/{r}"] for r in range(3)] == [1.0, 0.0, 0.0]
    assert result["row_coverage_spread/Alien"] == 1.0
    assert result["rows/Alien"] == 3.0
    assert not any(key.endswith("/Player") or "/Player/" in key for key in result)  # one per row


def test_one_keypoint_per_row_covers_every_row_alike():
    objects, centres = formation(6, jitter=0.8)  # heights jitter within a row, rows still apart
    result = coverage(objects, keypoints_on(centres, lambda x, y, label: label == ALIEN and x == 32.0))
    assert [result[f"coverage_row/Alien/{r}"] for r in range(3)] == [0.25, 0.25, 0.25]
    assert result["row_coverage_spread/Alien"] == 0.0


def test_rows_are_counted_from_each_frames_top_and_rare_rows_leave_the_spread_alone():
    # Nine frames of three rows, one frame with an extra fourth row below them, never covered:
    # the fourth row appears in 1/10 of the frames (< 0.25), so the spread ignores it.
    full, full_centres = formation(9)
    extra, extra_centres = formation(1, heights=(*ROW_HEIGHTS, 41.0))
    centres = full_centres + extra_centres
    width = max(full.valid.shape[1], extra.valid.shape[1])
    pad = lambda a, fill: np.concatenate([a, np.full((len(a), width - a.shape[1], *a.shape[2:]), fill)], 1)
    objects = ObjectSet(*(np.concatenate([pad(getattr(s, f), 0) for s in (full, extra)])
                          for f in ("boxes", "labels", "valid", "is_hud", "is_static")), NAMES)
    result = coverage(objects, keypoints_on(centres, lambda x, y, label: label == ALIEN and y < 38))
    assert result["coverage_row/Alien/3"] == 0.0
    assert result["row_coverage_spread/Alien"] == 0.0
    assert result["rows/Alien"] == pytest.approx(3.1)

    # With the top row gone in every frame, the old second row is row 0.
    lower, lower_centres = formation(4, heights=ROW_HEIGHTS[1:])
    result = coverage(lower, keypoints_on(lower_centres, lambda x, y, label: label == ALIEN and y < 30))
    assert result["coverage_row/Alien/0"] == 1.0 and result["coverage_row/Alien/1"] == 0.0


def test_evaluate_keypoints_reports_the_rows_for_the_model_and_its_baselines():
    objects, centres = formation(8)
    keypoints = keypoints_on(centres, lambda x, y, label: label == ALIEN and y < 24)
    result = metrics.evaluate_keypoints(keypoints, objects)
    assert result["row_coverage_spread/Alien"] == 1.0
    assert result["coverage_row/Alien/0"] == 1.0
    assert not math.isnan(result["rows/Alien"])


def test_hits_of_the_wrong_shape_are_refused():
    objects, _ = formation(2)
    with pytest.raises(ValueError, match=r"hits must be \[N, K, M\]"):
        rows.row_coverage(np.zeros((3, 4, objects.valid.shape[1]), bool), objects)
