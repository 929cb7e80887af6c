"""experiments/keypoint_readout_window.py: keypoints read near each heatmap's peak."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models import ops

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("keypoint_readout_window",
                                               ROOT / "experiments" / "keypoint_readout_window.py")
_readout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_readout)
peak_window_keypoints = _readout.peak_window_keypoints


def test_peak_window_keypoint_ignores_weight_far_from_the_peak_and_keeps_sub_cell_position():
    # A peak shared by cells (20, 10) and (20, 11) (so the object sits between them) plus a broad
    # low plateau over the right half of the map: the whole-map softmax is pulled right by the
    # plateau's many cells, the peak window is not and reads the midpoint between the two cells.
    size = 42
    grid = np.linspace(-1, 1, size)
    heatmaps = np.zeros((1, size, size, 1), np.float32)
    heatmaps[0, :, 21:, 0] = 2.0
    heatmaps[0, 20, 10:12, 0] = 9.0
    whole = ops.heatmaps_to_keypoints(heatmaps, "spatial").numpy()[0, 0]
    for radius in (1, 2, 3):
        window = peak_window_keypoints(heatmaps, radius).numpy()[0, 0]
        np.testing.assert_allclose(window, [grid[20], grid[10:12].mean()], atol=0.01)
    assert whole[1] > grid[10:12].mean() + 0.05  # the pull the window removes
    # Radius 0 is the peak cell; a window as large as the map is the whole-map softmax.
    np.testing.assert_allclose(peak_window_keypoints(heatmaps, 0).numpy()[0, 0],
                               [grid[20], grid[10]], atol=1e-6)
    np.testing.assert_allclose(peak_window_keypoints(heatmaps, size).numpy(),
                               ops.heatmaps_to_keypoints(heatmaps, "spatial").numpy(), atol=1e-5)


def test_peak_window_keypoint_moves_smoothly_with_the_peak_and_is_cut_at_the_border():
    # The logit of the right neighbour rises: the keypoint slides monotonically from the peak
    # cell towards the neighbour; a peak in a corner keeps its window inside the map.
    size = 21
    grid = np.linspace(-1, 1, size)
    heatmaps = np.zeros((5, size, size, 2), np.float32)
    heatmaps[:, 7, 7, 0] = 10.0
    heatmaps[:, 7, 8, 0] = np.linspace(0.0, 9.9, 5)
    heatmaps[:, 0, 0, 1] = 10.0
    keypoints = peak_window_keypoints(heatmaps, 2).numpy()
    x = keypoints[:, 0, 1]
    assert (np.diff(x) > 0).all() and grid[7] - 1e-6 <= x[0] and x[-1] < grid[7:9].mean()
    np.testing.assert_allclose(keypoints[:, 1], [[-1.0, -1.0]] * 5, atol=1e-3)


def test_peak_window_keypoint_has_gradient_inside_the_window_only():
    heatmaps = tf.Variable(np.random.default_rng(0).normal(size=(1, 12, 12, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        keypoints = peak_window_keypoints(heatmaps, 1)
        loss = tf.reduce_sum(keypoints)
    gradient = tape.gradient(loss, heatmaps).numpy()[0, :, :, 0]
    peak = np.unravel_index(np.argmax(heatmaps.numpy()[0, :, :, 0]), (12, 12))
    nonzero = np.argwhere(np.abs(gradient) > 0)
    assert len(nonzero) > 0
    assert (np.abs(nonzero - np.array(peak)) <= 1).all()
    with pytest.raises(ValueError, match="radius must be >= 0"):
        peak_window_keypoints(heatmaps, -1)
