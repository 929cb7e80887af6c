"""The single-coordinate readout: it finds the keypoint that follows a variable, undoes a smooth
distortion of its coordinate, and its F1 falls with the coordinate's imprecision (byte units)."""

import numpy as np
import pytest

from permakey_tf.probes.coordinate_readout import best_coordinate_readout

PIXELS_PER_STEP = 0.525  # Space Invaders: one step of the player's x byte, in 84x84 pixels


def _frames(rng, n, noise_steps=0.0, lost_share=0.0, keypoints=4, tracker=2):
    """Values 35..117 and keypoints; keypoint ``tracker``'s y follows the value through a
    compressing (soft-argmax-like) distortion plus Gaussian noise, except in ``lost_share`` of the
    frames where it sits on the score at the top; the other keypoints are random."""
    values = rng.integers(35, 118, n).astype(np.float64)
    points = rng.uniform(0, 84, (n, keypoints, 2))
    centred = (values - 76) * PIXELS_PER_STEP
    points[:, tracker, 1] = 42 + centred - 0.0005 * centred**3 + rng.normal(0, noise_steps * PIXELS_PER_STEP, n)
    lost = rng.random(n) < lost_share
    points[lost, tracker, 1] = rng.uniform(0, 8, lost.sum())  # on the score at the top
    return points, values


def _readout(seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    fit, scored = _frames(rng, 3000, **kwargs), _frames(rng, 600, **kwargs)
    return best_coordinate_readout(*fit, *scored)


def test_an_exact_but_distorted_coordinate_reads_the_exact_value():
    readout = _readout()
    assert (readout.keypoint, readout.axis) == (2, "y")
    assert readout.correlation > 0.95
    assert readout.f1 > 0.97 and readout.within["0"] > 0.97
    assert readout.abs_error_quantiles["q90"] < 0.5


def test_a_line_alone_would_not_undo_the_distortion():
    """The polynomial calibration matters: degree 1 on the same frames misses exact values."""
    rng = np.random.default_rng(0)
    fit, scored = _frames(rng, 3000), _frames(rng, 600)
    assert best_coordinate_readout(*fit, *scored, degree=1).f1 < 0.5 < best_coordinate_readout(*fit, *scored).f1


def test_f1_falls_with_the_coordinate_noise_and_tolerances_recover_it():
    """Noise of 1 byte step (half a pixel) already halves the exact-value F1; within 2 steps most
    frames are still right: precision, not tracking, is what the exact F1 measures."""
    sharp, half, one = (_readout(noise_steps=s) for s in (0.2, 0.5, 1.0))
    assert sharp.f1 > half.f1 > one.f1
    assert one.f1 < 0.5
    assert one.within["2"] > 0.85 > one.within["0"]
    assert one.tracked_share > 0.99


def test_frames_where_the_keypoint_is_elsewhere_count_as_untracked_without_spoiling_the_rest():
    readout = _readout(lost_share=0.2)
    assert readout.tracked_share == pytest.approx(0.8, abs=0.06)
    assert readout.within["0"] == pytest.approx(0.8, abs=0.06)


def test_bad_input_is_refused_with_the_reason():
    rng = np.random.default_rng(0)
    points, values = _frames(rng, 50)
    with pytest.raises(ValueError, match="same K"):
        best_coordinate_readout(points, values, points[:, :2], values)
    with pytest.raises(ValueError, match="constant"):
        best_coordinate_readout(points, np.full(50, 3.0), points, values)
