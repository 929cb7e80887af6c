"""Meaning of the pure tensor functions in permakey_tf.models.ops."""

import math

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models import ops


def test_keypoints_from_whole_rows_and_columns():
    size = 16
    grid = np.linspace(-1, 1, size)
    heatmaps = np.zeros((1, size, size, 2), np.float32)
    heatmaps[0, 3, :, 0] = 50.0  # whole row 3 and whole column 12 in channel 0
    heatmaps[0, :, 12, 0] = 50.0
    heatmaps[0, size - 1, :, 1] = 50.0  # bottom row, first column in channel 1
    heatmaps[0, :, 0, 1] = 50.0
    keypoints = ops.heatmaps_to_keypoints(heatmaps, "marginal").numpy()
    np.testing.assert_allclose(keypoints[0, 0], [grid[3], grid[12]], atol=1e-3)
    np.testing.assert_allclose(keypoints[0, 1], [1.0, -1.0], atol=1e-3)


def test_single_corner_spike_does_not_reach_the_corner():
    # docs/BACKGROUND.md section 4: averaging over the other axis dilutes a one-pixel spike.
    heatmaps = np.zeros((1, 42, 42, 1), np.float32)
    heatmaps[0, 0, 0, 0] = 50.0
    keypoints = ops.heatmaps_to_keypoints(heatmaps, "marginal").numpy()[0, 0]
    assert (keypoints < 0).all() and (keypoints > -0.9).all()
    # The spatial softmax puts the keypoint on the spike.
    spatial = ops.heatmaps_to_keypoints(heatmaps, "spatial").numpy()[0, 0]
    np.testing.assert_allclose(spatial, [-1.0, -1.0], atol=1e-3)


def test_spatial_keypoint_follows_a_small_blob_that_a_static_row_hides_from_the_marginal_one():
    # A bright 2x2 blob at two positions, plus a whole row of moderate logits present in both
    # frames (a border): the spatial reduction moves with the blob, the marginal one is held by
    # the row.
    size = 42
    grid = np.linspace(-1, 1, size)
    heatmaps = np.zeros((2, size, size, 1), np.float32)
    heatmaps[:, 0, :, 0] = 4.0
    heatmaps[0, 10:12, 8:10, 0] = 12.0
    heatmaps[1, 30:32, 33:35, 0] = 12.0
    spatial = ops.heatmaps_to_keypoints(heatmaps, "spatial").numpy()[:, 0]
    np.testing.assert_allclose(spatial[0], [grid[10:12].mean(), grid[8:10].mean()], atol=0.02)
    np.testing.assert_allclose(spatial[1], [grid[30:32].mean(), grid[33:35].mean()], atol=0.02)
    marginal = ops.heatmaps_to_keypoints(heatmaps, "marginal").numpy()[:, 0]
    assert np.abs(marginal[1] - marginal[0]).max() < 0.5 * np.abs(spatial[1] - spatial[0]).max()


def _box_map(left: float, top: float, size: float = 6.0, image: int = 84, background: float = 0.0):
    """``[1, image, image, 1]``: a square of side ``size`` px at a continuous position, each pixel
    holding the share of its area the square covers (as an area resize renders a moving sprite)."""
    edges = np.arange(image + 1, dtype=np.float64)
    cover_x = np.clip(np.minimum(edges[1:], left + size) - np.maximum(edges[:-1], left), 0, 1)
    cover_y = np.clip(np.minimum(edges[1:], top + size) - np.maximum(edges[:-1], top), 0, 1)
    square = np.outer(cover_y, cover_x)
    return (background + (1 - background) * square)[None, :, :, None].astype(np.float32)


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5, 0.8])
def test_mean_shift_lands_on_a_square_to_a_fraction_of_a_pixel(offset):
    # A keypoint 3 px off a square's centre, on a dim uniform background: after a few steps it is
    # on the centre within 0.05 px, for every sub-pixel position of the square.
    left, top = 40.0 + offset, 20.0 + offset / 2
    maps = _box_map(left, top, background=0.1)
    start = ops.pixels_to_keypoints(tf.constant([[[left + 3 + 3.0, top + 3 - 2.0]]]))
    moved = ops.keypoints_to_pixels(ops.mean_shift_keypoints(start, maps, 0.1, iterations=6))
    np.testing.assert_allclose(moved.numpy()[0, 0], [left + 3, top + 3], atol=0.05)
    # Without removing the background, the window's own centre holds it back: after 3 steps it
    # is still more than 3x as far off as with the median removed.
    def error(steps, background):
        moved = ops.mean_shift_keypoints(start, maps, 0.1, steps, background=background)
        return np.abs(ops.keypoints_to_pixels(moved).numpy()[0, 0] - [left + 3, top + 3]).max()

    assert error(3, "none") > 3 * error(3, "median")


def test_mean_shift_follows_sub_pixel_motion_linearly():
    # The square moves by 0.1 px steps; the refined keypoint moves with it, step for step, while
    # the start (a fixed point near it) does not move at all.
    start = ops.pixels_to_keypoints(tf.constant([[[45.0, 25.0]]]))
    xs = []
    for shift in np.arange(0.0, 1.01, 0.1):
        maps = _box_map(40.0 + shift, 20.0)
        xs.append(ops.keypoints_to_pixels(ops.mean_shift_keypoints(start, maps, 0.1, 8)).numpy()[0, 0, 0])
    np.testing.assert_allclose(np.diff(xs), 0.1, atol=0.01)


def test_mean_shift_leaves_keypoints_without_mass_and_zero_steps_alone():
    maps = _box_map(10.0, 10.0)  # square near the top-left corner
    far = tf.constant([[[0.8, 0.8], [-0.75, -0.75]]])  # (y, x): one far away, one near the square
    moved = ops.mean_shift_keypoints(far, maps, 0.1, iterations=3).numpy()
    np.testing.assert_allclose(moved[0, 0], [0.8, 0.8])
    assert np.abs(moved[0, 1] - ops.pixels_to_keypoints(tf.constant([[[13.0, 13.0]]])).numpy()[0, 0]).max() < 0.01
    np.testing.assert_array_equal(ops.mean_shift_keypoints(far, maps, 0.1, iterations=0), far)
    # One keypoint per frame, and an empty batch, keep their shapes.
    one = ops.mean_shift_keypoints(far[:, 1:], maps, 0.1, iterations=3).numpy()
    np.testing.assert_allclose(one[0, 0], moved[0, 1], atol=1e-6)
    assert ops.mean_shift_keypoints(far[:0], maps[:0], 0.1, iterations=2).shape == (0, 2, 2)
    with pytest.raises(ValueError, match="iterations"):
        ops.mean_shift_keypoints(far, maps, 0.1, iterations=-1)
    with pytest.raises(ValueError, match="background"):
        ops.mean_shift_keypoints(far, maps, 0.1, background="mean")


def _dense_gaussian_windows(keypoints, height, width, sigma, margin=0):
    """exp(-((y - mu_y)^2 + (x - mu_x)^2) / sigma^2) on the (extended) pixel grid, in float64."""
    step_y, step_x = 2.0 / (height - 1), 2.0 / (width - 1)
    ys = -1.0 + step_y * np.arange(-margin, height + margin)
    xs = -1.0 + step_x * np.arange(-margin, width + margin)
    k = np.asarray(keypoints, np.float64)
    squared = ((ys[None, :, None, None] - k[:, None, None, :, 0]) ** 2
               + (xs[None, None, :, None] - k[:, None, None, :, 1]) ** 2)
    return np.exp(-squared / sigma**2), ys, xs


def test_gaussian_maps_and_mean_shift_equal_their_dense_formulas():
    """Both are computed from row and column profiles; check them against the window written out
    over every pixel: the maps (with a margin), and one mean-shift step on random maps."""
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(-0.9, 0.9, (2, 5, 2)).astype(np.float32)
    maps = ops.keypoints_to_gaussian_maps(tf.constant(keypoints), 20, 24, 0.15, margin=3).numpy()
    dense, _, _ = _dense_gaussian_windows(keypoints, 20, 24, 0.15, margin=3)
    np.testing.assert_allclose(maps, dense, rtol=1e-5, atol=1e-7)

    error_maps = rng.uniform(size=(2, 20, 24, 2)).astype(np.float32) ** 4
    moved = ops.mean_shift_keypoints(tf.constant(keypoints), error_maps, 0.15, 1, background="none")
    windows, ys, xs = _dense_gaussian_windows(keypoints, 20, 24, 0.15)
    weights = windows * error_maps.sum(-1)[..., None]  # [B, H, W, K]
    total = weights.sum(axis=(1, 2))
    expected = np.stack([np.einsum("bhwk,h->bk", weights, ys) / total,
                         np.einsum("bhwk,w->bk", weights, xs) / total], axis=-1)
    np.testing.assert_allclose(moved.numpy(), expected, atol=1e-5)
    assert np.abs(expected - keypoints).max() > 0.01  # the step does move them


def test_unknown_keypoint_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction must be one of"):
        ops.heatmaps_to_keypoints(np.zeros((1, 4, 4, 1), np.float32), "mean")


def test_gaussian_map_values():
    size, sigma = 21, 0.1  # linspace(-1, 1, 21) has step 0.1: index 10 is 0, index 11 is 0.1
    keypoints = tf.constant([[[0.0, 0.0]]])
    maps = ops.keypoints_to_gaussian_maps(keypoints, size, size, sigma).numpy()[0, :, :, 0]
    assert maps[10, 10] == pytest.approx(1.0)
    assert maps[11, 10] == pytest.approx(math.exp(-1), rel=1e-5)
    assert maps[10, 9] == pytest.approx(math.exp(-1), rel=1e-5)
    assert maps[11, 11] == pytest.approx(math.exp(-2), rel=1e-5)
    assert maps.argmax() == 10 * size + 10


def test_normalize_maps_constant_and_ranges():
    constant = tf.fill([2, 8, 8, 2], 0.3)
    normalized = ops.normalize_maps(constant).numpy()
    assert np.isfinite(normalized).all() and (normalized == 0).all()
    rng = np.random.default_rng(1)
    maps = rng.uniform(2.0, 5.0, size=(2, 8, 8, 2)).astype(np.float32)
    normalized = ops.normalize_maps(maps).numpy()
    np.testing.assert_allclose(normalized.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(normalized.max(axis=(1, 2)), 1.0, atol=1e-5)


def test_keypoints_to_pixels_round_trip_and_corners():
    keypoints = tf.constant([[[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]])
    pixels = ops.keypoints_to_pixels(keypoints, 84).numpy()[0]
    # (y, x) -> (x, y); -1 is the first pixel's centre, +1 the last's.
    np.testing.assert_allclose(pixels, [[0.5, 0.5], [83.5, 83.5], [83.5, 0.5]], atol=1e-5)
    np.testing.assert_allclose(ops.pixels_to_keypoints(pixels[None], 84), keypoints, atol=1e-6)


def test_hashed_normal_is_standard_normal_and_identical_under_xla():
    seed = tf.constant([12345, 7], tf.int64)
    graph = tf.function(lambda: ops.hashed_normal([50_000], seed))().numpy()
    xla = tf.function(lambda: ops.hashed_normal([50_000], seed), jit_compile=True)().numpy()
    np.testing.assert_allclose(graph, xla, atol=1e-6)  # XLA's log/cos differ in the last bit
    # 50,000 samples: mean within ~4.5 standard errors, std within 2%, two-sided 2-sigma tail ~4.55%.
    assert abs(graph.mean()) < 0.02 and abs(graph.std() - 1) < 0.02
    assert abs((np.abs(graph) > 2).mean() - 0.0455) < 0.005
    other = ops.hashed_normal([50_000], tf.constant([12345, 8], tf.int64)).numpy()
    assert abs(np.corrcoef(graph, other)[0, 1]) < 0.02
    assert ops.hashed_normal([2, 3], seed).shape == (2, 3)


