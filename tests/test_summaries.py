"""permakey_tf.training.summaries: the TensorBoard map panels."""

from __future__ import annotations

import numpy as np


def test_map_panels_lay_out_frame_gaussians_error_maps_reconstruction():
    from permakey_tf.training.summaries import map_panels

    frames = np.zeros([2, 84, 84, 3], np.uint8)
    frames[:, 10, 20] = 255
    gaussians = np.zeros([2, 84, 84, 3], np.float32)
    gaussians[:, 40, 50, 1] = 0.5  # one keypoint's peak
    errors = np.full([2, 84, 84, 2], 0.2, np.float32)
    errors[:, 5, 6, 1] = 0.9
    reconstruction = np.full([2, 84, 84, 3], 0.5, np.float32)
    outputs = {"gaussian_maps": gaussians, "error_maps": errors, "reconstruction": reconstruction}
    panel = map_panels(frames, outputs, scale=1)
    assert panel.shape == (2 * 84, 5 * 84, 3) and panel.dtype == np.uint8
    tile = lambda row, column: panel[row * 84:(row + 1) * 84, column * 84:(column + 1) * 84]  # noqa: E731
    np.testing.assert_array_equal(tile(1, 0), frames[1])
    assert tile(0, 1)[40, 50, 0] == 255 and tile(0, 1).sum() == 3 * 255  # summed, min-max scaled
    assert tile(0, 2).max() == 0  # a flat error map stays dark instead of dividing by zero
    assert tile(0, 3)[5, 6, 0] == 255 and tile(0, 3)[0, 0, 0] == 0
    assert (tile(0, 4) == 128).all()
    assert map_panels(frames, {"gaussian_maps": gaussians}, scale=2).shape == (2 * 168, 2 * 168, 3)
