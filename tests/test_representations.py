"""permakey_tf.probes.representations: what the probes read at each keypoint's window, and the pixel baseline."""

import numpy as np
import pytest

from permakey_tf.probes import representations


def test_window_colours_and_downsampled_pixels():
    frames = np.zeros((1, 84, 84, 3), np.uint8)
    frames[0, 8:12, 20:24] = (255, 0, 0)
    maps = np.zeros((1, 84, 84, 2), np.float32)
    maps[0, 8:12, 20:24, 0] = 1.0  # keypoint 0 sits on the red square, keypoint 1 on black
    maps[0, 50:54, 50:54, 1] = 1.0
    colours = representations.window_colours(frames, maps).reshape(2, 3)
    np.testing.assert_allclose(colours, [[1, 0, 0], [0, 0, 0]], atol=1e-6)
    pixels = representations.downsampled_pixels(frames)
    assert pixels.shape == (1, 21 * 21 * 3) and pixels.max() == pytest.approx(1.0)


def test_window_features_read_a_coarse_feature_map_where_each_window_sits():
    # A stride-4 feature map (21x21, like an encoder block) whose channel 0 is 7 in the cell
    # that covers pixels 8-11 x 20-23 and channel 1 is 3 everywhere.
    features = np.zeros((1, 21, 21, 2), np.float32)
    features[0, 2, 5, 0] = 7.0
    features[..., 1] = 3.0
    maps = np.zeros((1, 84, 84, 2), np.float32)
    maps[0, 8:12, 20:24, 0] = 1.0  # keypoint 0's window covers that cell only
    maps[0, 9:11, 20:28, 1] = 1.0  # keypoint 1's is half on it, half on its right neighbour
    read = representations.window_features(features, maps).reshape(2, 2)
    np.testing.assert_allclose(read, [[7, 3], [3.5, 3]], atol=1e-5)
    # At full resolution it is the colour reading (same numbers as window_colours).
    frames = np.random.default_rng(0).integers(0, 256, (1, 84, 84, 3), dtype=np.uint8)
    np.testing.assert_allclose(representations.window_features(frames / 255.0, maps),
                               representations.window_colours(frames, maps), atol=1e-6)
    with pytest.raises(ValueError, match="one multiple"):
        representations.window_features(np.zeros((1, 20, 20, 2)), maps)
