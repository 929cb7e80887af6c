"""Figures: markers land where the keypoints are; every figure writes a non-empty PNG."""

import numpy as np
import pytest
from matplotlib.image import imread

from permakey_tf import viz

SIZE = 84


def black(n=1):
    return np.zeros([n, SIZE, SIZE, 3], np.uint8)


def test_keypoint_colors_are_distinct_and_stable():
    colors = viz.keypoint_colors(25)
    assert colors.dtype == np.uint8 and colors.shape == (25, 3)
    assert len({tuple(c) for c in colors}) == 25
    assert np.array_equal(viz.keypoint_colors(8), colors[:8])


def test_overlay_grid_puts_each_marker_on_its_keypoint_in_its_tile():
    frames = black(3)
    keypoints = np.array([[[10.5, 20.5], [70.0, 5.0]]] * 3)
    keypoints[2, 0] = [40.0, 60.0]
    scale, pad = 2, 2
    grid = viz.overlay_grid(frames, keypoints, columns=2, scale=scale, padding=pad)
    tile = SIZE * scale + pad
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * tile + pad, 2 * tile + pad, 3)
    colors = viz.keypoint_colors(2)
    # Frame 1 (row 0, column 1): keypoint 0 at x = 10.5, y = 20.5.
    assert np.array_equal(grid[pad + 41, pad + tile + 21], colors[0])
    assert np.array_equal(grid[pad + 10, pad + tile + 140], colors[1])
    # Frame 2 (row 1, column 0): keypoint 0 moved to (40, 60); its old place stays black.
    assert np.array_equal(grid[pad + tile + 120, pad + 80], colors[0])
    assert np.array_equal(grid[pad + tile + 41, pad + 21], [0, 0, 0])
    # The empty fourth tile is white padding.
    assert np.all(grid[pad + tile + 50, pad + tile + 50] == 255)
    # Markers are small: most of a black frame stays black.
    assert (grid[pad:pad + SIZE * scale, pad:pad + SIZE * scale].sum(-1) > 0).mean() < 0.01


def test_overlay_grid_rejects_mismatched_keypoints():
    with pytest.raises(ValueError, match=r"\[N, K, 2\]"):
        viz.overlay_grid(black(2), np.zeros([3, 4, 2]))


def _marker_centre_in_png(path, color, tol=40):
    image = (imread(path)[..., :3] * 255).astype(int)
    match = np.all(np.abs(image - color.astype(int)) < tol, axis=-1)
    rows, cols = np.nonzero(match)
    assert len(rows) > 0, "keypoint colour not found in the PNG"
    return image.shape, cols.mean(), rows.mean()


def test_plot_keypoints_draws_the_marker_where_the_keypoint_is(tmp_path):
    path = tmp_path / "kps.png"
    keypoint = np.array([[[60.0, 20.0]]])
    fig = viz.plot_keypoints(black(), keypoint, path=str(path))
    assert path.stat().st_size > 1000
    shape, cx, cy = _marker_centre_in_png(path, viz.keypoint_colors(1)[0])
    box = fig.axes[0].get_window_extent()  # display pixels, origin bottom-left
    expected_x = box.x0 + 60.0 / SIZE * box.width
    expected_y = shape[0] - (box.y1 - 20.0 / SIZE * box.height)
    assert abs(cx - expected_x) < 3 and abs(cy - expected_y) < 3


def test_figure2_layout_has_image_model_and_error_map_rows(tmp_path):
    images = black(2)
    kps = np.full([2, 3, 2], 40.0)
    maps = np.random.default_rng(0).uniform(size=[2, SIZE, SIZE, 2])
    path = tmp_path / "fig2.png"
    fig = viz.plot_figure2(images, {"Transporter": kps, "PermaKey": kps}, maps,
                           column_titles=["a", "b"], path=str(path))
    assert len(fig.axes) == (1 + 2 + 2) * 2
    assert [fig.axes[r * 2].get_ylabel() for r in range(5)] == [
        "image", "Transporter", "PermaKey", "error map 0", "error map 1"]
    assert path.stat().st_size > 1000


def test_gaussian_windows_match_the_models_gaussian_maps():
    from permakey_tf.models import ops

    pixels = np.array([[30.0, 50.0], [70.25, 12.5]])
    maps = viz.gaussian_windows(pixels, sigma=0.1)
    model_maps = ops.keypoints_to_gaussian_maps(
        ops.pixels_to_keypoints(pixels[None]), SIZE, SIZE, 0.1).numpy()[0]
    assert maps.shape == (SIZE, SIZE, 2)
    np.testing.assert_allclose(maps, model_maps, atol=1e-5)
    # One sigma (0.1 * 41.5 px) from the centre the window is e^-1.
    sigma_px = 0.1 * (SIZE - 1) / 2
    assert viz.gaussian_windows(np.array([[0.5, 0.5]]), 0.1)[0, 0, 0] == pytest.approx(1)
    assert viz.gaussian_windows(np.array([[0.5, 0.5 + sigma_px]]), 0.1)[0, 0, 0] == pytest.approx(
        np.exp(-1))


def test_figure4_seed_overlay_and_ablation_write_pngs(tmp_path):
    image = black()[0]
    kps = np.array([[20.0, 30.0], [60.0, 50.0]])
    viz.plot_gaussian_windows(image, kps, sigma=0.1, path=str(tmp_path / "fig4.png"))
    viz.plot_seed_overlay(image, {"seed 0": kps, "seed 1": kps + 5}, path=str(tmp_path / "fig3.png"))
    viz.plot_ablation(["15", "20", "25"], {"PermaKey": [0.3, 0.4, 0.35], "fixed": [0.2, 0.2, 0.25]},
                      errors={"PermaKey": [0.01, 0.02, 0.01]}, path=str(tmp_path / "k.png"))
    for name in ("fig4.png", "fig3.png", "k.png"):
        assert (tmp_path / name).stat().st_size > 1000
    # Seed 1's colour sits 5 px right/down of seed 0's markers on average.
    shape, cx0, cy0 = _marker_centre_in_png(tmp_path / "fig3.png", viz.keypoint_colors(2)[0])
    _, cx1, cy1 = _marker_centre_in_png(tmp_path / "fig3.png", viz.keypoint_colors(2)[1])
    assert cx1 > cx0 and cy1 > cy0
    with pytest.raises(ValueError, match="2 values for 3 settings"):
        viz.plot_ablation(["a", "b", "c"], {"x": [1, 2]})


def test_seed_overlay_draws_one_panel_per_frame_with_each_frames_keypoints():
    frames = np.concatenate([black(), black()])
    kps = np.array([[[20.0, 30.0]], [[60.0, 50.0]]])  # the one keypoint moves between the frames
    fig = viz.plot_seed_overlay(frames, {"seed 0": kps, "seed 1": kps + 2})
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax, frame_kps in zip(axes, kps):
        offsets = np.concatenate([c.get_offsets() for c in ax.collections])
        np.testing.assert_allclose(offsets, [frame_kps[0], frame_kps[0] + 2])
    with pytest.raises(ValueError, match="N = 2 frames"):
        viz.plot_seed_overlay(frames, {"seed 0": kps[:1]})
