"""Per-frame keypoint diagnostics (shift gain, PointNet loss ratio) and the linear probe."""

import math

import numpy as np
import pytest

from permakey_tf.scoring import baselines, diagnostics, metrics
from permakey_tf.scoring.matching import ObjectSet

SIZE = 84


def square_frames(positions, background=(30, 60, 90)):
    """uint8 frames with a white 3x3 square whose top-left corner is at each (x, y)."""
    frames = np.empty((len(positions), SIZE, SIZE, 3), np.uint8)
    frames[:] = background
    for frame, (x, y) in zip(frames, positions):
        frame[y:y + 3, x:x + 3] = 255
    return frames


def bright_centroid(frames):
    """A perfect 'detector': the centroid (x, y) of the white pixels, as [N, 1, 2] pixels."""
    white = np.all(frames == 255, axis=-1)
    out = []
    for mask in white:
        ys, xs = np.nonzero(mask)
        out.append([[xs.mean() + 0.5, ys.mean() + 0.5]])
    return np.asarray(out)


def test_shift_frames_moves_content_and_fills_with_the_background_colour():
    frames = square_frames([(40, 40)])
    moved = diagnostics.shift_frames(frames, 5, -3)
    assert np.all(moved[0, 37:40, 45:48] == 255)
    assert np.all(moved[0, 40:43, 40:43] == (30, 60, 90))
    assert np.all(moved[0, :, :5] == (30, 60, 90))  # uncovered strip: background, not black
    assert np.all(moved[0, -3:, :] == (30, 60, 90))
    np.testing.assert_array_equal(diagnostics.background_colours(frames), [[30, 60, 90]])
    with pytest.raises(ValueError, match="not smaller"):
        diagnostics.shift_frames(frames, 84, 0)


def test_shift_gain_is_one_for_a_detector_and_zero_for_a_fixed_layout():
    rng = np.random.default_rng(0)
    frames = square_frames(rng.integers(15, 66, size=(20, 2)))
    follows = diagnostics.shift_equivariance_gain(bright_centroid, frames, shift=4)
    assert follows["shift_gain"] == pytest.approx(1.0)
    assert follows["shift_gain_x"] == pytest.approx(1.0) and follows["shift_gain_y"] == pytest.approx(1.0)
    assert follows["shift_gain_count"] == 80

    def fixed(frames):
        return np.full((len(frames), 3, 2), 42.0)

    assert diagnostics.shift_equivariance_gain(fixed, frames, shift=4)["shift_gain"] == 0.0

    def half(frames):  # moves half as far as the content
        return 0.5 * bright_centroid(frames) + 21.0

    assert diagnostics.shift_equivariance_gain(half, frames, shift=4)["shift_gain"] == pytest.approx(0.5)


def test_shift_gain_ignores_keypoints_near_the_edge():
    frames = square_frames([(1, 40), (40, 40)])  # the first square touches the left edge
    result = diagnostics.shift_equivariance_gain(bright_centroid, frames, shift=4, margin=8)
    assert result["shift_gain_count"] == 4  # only the second frame's keypoint, 4 directions


def _one_gaussian_per_frame(centres, sigma):
    import tensorflow as tf

    from permakey_tf.models import ops

    keypoints = ops.pixels_to_keypoints(tf.constant(centres, tf.float32))
    return ops.keypoints_to_gaussian_maps(keypoints, SIZE, SIZE, sigma).numpy()


@pytest.mark.parametrize("extent", ["frame", "padded"])
def test_pointnet_loss_ratio_measures_the_loss_the_model_trains(extent):
    """The diagnostics' PointNet loss is the training loss itself, whatever its options (the
    frame's surroundings or not), not a copy that could drift from it."""
    import tensorflow as tf

    from permakey_tf.models import ops
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.pointnet import pointnet_frame_losses_of_pixels, pointnet_loss

    config = PermaKeyConfig(num_keypoints=3, pointnet_loss_extent=extent)
    rng = np.random.default_rng(0)
    keypoints = tf.constant(rng.uniform(-1.05, 1.05, (5, 3, 2)), tf.float32)  # some beyond the edge
    maps = tf.constant(rng.uniform(0, 1, (5, SIZE, SIZE, 1)), tf.float32)
    outputs = {"keypoints": keypoints,
               "gaussian_maps": ops.keypoints_to_gaussian_maps(keypoints, SIZE, SIZE, config.keypoint_sigma)}
    trained = float(pointnet_loss(outputs, maps, config))
    measured = diagnostics.pointnet_loss_ratio(
        ops.keypoints_to_pixels(keypoints).numpy(), maps.numpy(),
        lambda kps, error_maps: pointnet_frame_losses_of_pixels(kps, error_maps, config, chunk=2))
    assert measured["pointnet_loss"] == pytest.approx(trained, rel=1e-5)


def test_pointnet_loss_ratio_rewards_keypoints_that_follow_the_maps():
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.pointnet import pointnet_frame_losses_of_pixels

    config = PermaKeyConfig(num_keypoints=1)
    rng = np.random.default_rng(1)
    centres = rng.uniform(15, 69, size=(30, 1, 2))
    maps = _one_gaussian_per_frame(centres, config.keypoint_sigma)  # error maps = one Gaussian per frame

    def losses(kps, error_maps):
        return pointnet_frame_losses_of_pixels(kps, error_maps, config)

    following = diagnostics.pointnet_loss_ratio(centres, maps, losses)
    assert following["pointnet_loss"] == pytest.approx(0.0, abs=1e-9)
    assert following["pointnet_loss_ratio"] < 0.01
    fixed = np.broadcast_to(centres.mean(0, keepdims=True), centres.shape)
    assert diagnostics.pointnet_loss_ratio(fixed, maps, losses)["pointnet_loss_ratio"] == pytest.approx(1.0)


def _objects_at(centres, labels, class_names):
    """ObjectSet with 2x2 boxes around (x, y) centres [N, M, 2]."""
    frames = []
    for frame_centres in centres:
        boxes = [[(y - 1) / SIZE, (x - 1) / SIZE, (y + 1) / SIZE, (x + 1) / SIZE] for x, y in frame_centres]
        frames.append({"bbox": np.array(boxes), "label": np.array(labels),
                       "is_hud": np.zeros(len(labels), bool), "is_static": np.zeros(len(labels), bool)})
    return ObjectSet.from_frames(frames, class_names)


def test_position_probe_scores_keypoints_on_objects_high_and_a_fixed_layout_at_most_zero():
    rng = np.random.default_rng(3)
    n = 200
    centres = rng.uniform(10, 74, size=(n, 2, 2))  # a player and a ball per frame
    objects = _objects_at(centres, [0, 1], ("Player", "Ball"))
    episodes = np.repeat(np.arange(4), n // 4)
    steps = np.tile(np.arange(n // 4), 4)
    on_objects = metrics.position_probe(centres, objects, episodes, steps)
    assert on_objects["probe_r2"] > 0.99
    assert set(on_objects) >= {"probe_r2/Player", "probe_r2/Ball"}
    fixed = baselines.fixed_layout_keypoints(centres)
    assert metrics.position_probe(fixed, objects, episodes, steps)["probe_r2"] <= 0.0
    random = baselines.random_keypoints(n, 2, seed=0)
    assert metrics.position_probe(random, objects, episodes, steps)["probe_r2"] < 0.1
    # evaluate_keypoints reports it when episode ids are given.
    assert "probe_r2" in metrics.evaluate_keypoints(centres, objects, episode_ids=episodes, steps=steps)


def test_class_positions_average_a_group_and_mark_absent_classes():
    centres = np.array([[[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]])
    objects = _objects_at(centres, [0, 0, 1], ("Alien", "Player"))
    positions = metrics.class_positions(objects)
    assert positions["Alien_x"][0] == pytest.approx(20.0) and positions["Alien_y"][0] == pytest.approx(30.0)
    assert positions["Player_x"][0] == pytest.approx(50.0)
    only_aliens = _objects_at(centres[:, :2], [0, 0], ("Alien", "Player"))
    assert "Player_x" not in metrics.class_positions(only_aliens)
    two = ObjectSet.from_frames([
        {"bbox": np.array([[0.1, 0.1, 0.12, 0.12]]), "label": np.array([1])},
        {"bbox": np.zeros((0, 4)), "label": np.zeros(0, int)},
    ], ("Alien", "Player"))
    assert math.isnan(metrics.class_positions(two)["Player_x"][1])


def test_a_keypoint_pays_on_a_large_error_blob_and_not_on_a_small_one():
    """The gain map says where one keypoint lowers the PointNet loss; it agrees with the loss
    itself, and a blob much smaller than the window is not worth a keypoint."""
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.pointnet import pointnet_frame_losses_of_pixels

    config = PermaKeyConfig(num_keypoints=1)
    maps = np.zeros((2, SIZE, SIZE, 1))
    maps[0, 30:38, 40:48] = 1.0  # 64 pixels
    maps[1, 30:32, 40:41] = 1.0  # 2 pixels, like a ball
    gain = diagnostics.keypoint_gain_maps(maps, config.keypoint_sigma)
    assert gain[0, 34, 44] > 0 > gain[1, 31, 40]
    # The gain is the loss's own change (the frame loss divides by S^2).
    keypoint = np.array([[[44.5, 34.5]]])
    for frame in range(2):
        with_point = pointnet_frame_losses_of_pixels(keypoint, maps[frame:frame + 1], config)[0]
        far = pointnet_frame_losses_of_pixels(np.array([[[-200.0, -200.0]]]), maps[frame:frame + 1], config)[0]
        assert (far - with_point) * SIZE**2 == pytest.approx(gain[frame, 34, 44], rel=0.02, abs=0.05)


def hud_and_moving_object_maps(frames=30):
    """One-layer error maps [N, 84, 84, 1]: a bright static 8x8 block (a score) in every frame and
    a faint 3x3 object (a cannon) moving right along the bottom; and the object's centre [N, 2]."""
    maps = np.zeros((frames, SIZE, SIZE, 1))
    maps[:, 2:10, 70:78] = 1.0
    centres = []
    for t in range(frames):
        x = 8 + 2 * t
        maps[t, 74:77, x:x + 3] = 0.3
        centres.append((x + 1.5, 75.5))
    return maps, np.asarray(centres)


def test_moving_error_coverage_rewards_following_a_faint_moving_object_over_a_bright_static_one():
    maps, centres = hud_and_moving_object_maps()
    hud = np.array([74.0, 6.0])
    tracking = np.stack([np.broadcast_to(hud, centres.shape), centres], axis=1)  # [N, 2, 2]
    still = np.stack([np.broadcast_to(hud, centres.shape),
                      np.broadcast_to(centres.mean(0), centres.shape)], axis=1)
    follows = diagnostics.moving_error_coverage(tracking, maps, sigma=0.1)
    stays = diagnostics.moving_error_coverage(still, maps, sigma=0.1)
    assert follows["moving_error_coverage"] > 0.7
    assert stays["moving_error_coverage"] < 0.2
    # The still layout is its own fixed layout; the tracking one gains over its fixed layout.
    assert stays["moving_error_coverage_gain"] == pytest.approx(0.0, abs=1e-12)
    assert follows["moving_error_coverage_gain"] > 0.5
    # A keypoint that follows the object 12 px off covers little of it.
    off = tracking.copy()
    off[:, 1, 1] -= 12.0
    assert diagnostics.moving_error_coverage(off, maps, sigma=0.1)["moving_error_coverage"] < 0.2


def test_moving_error_coverage_ignores_what_every_frame_shows():
    maps, centres = hud_and_moving_object_maps()
    static = np.repeat(maps[:1], len(maps), axis=0)  # the first frame, held: nothing moves
    keypoints = np.broadcast_to(np.array([[74.0, 6.0]]), (len(maps), 1, 2))
    assert math.isnan(diagnostics.moving_error_coverage(keypoints, static, sigma=0.1)["moving_error_coverage"])
    # Adding the static block to every frame or not changes nothing.
    without_hud = maps.copy()
    without_hud[:, 2:10, 70:78] = 0.0
    tracking = centres[:, None, :]
    assert diagnostics.moving_error_coverage(tracking, maps, 0.1)["moving_error_coverage"] == pytest.approx(
        diagnostics.moving_error_coverage(tracking, without_hud, 0.1)["moving_error_coverage"])
    with pytest.raises(ValueError, match="do not match"):
        diagnostics.moving_error_coverage(keypoints[:5], maps, sigma=0.1)
