"""Tests for permakey_tf.evaluation.transport_diagnosis and Transporter.reconstruct_with_keypoints:
the reconstruction with given keypoints, and what the diagnosis says of a model whose keypoints
cannot move. (A trained model's diagnosis is tested in tests/test_transporter.py, on the model its
learning test trains.)"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.evaluation.transport_diagnosis import (OUTSIDE_OBJECTS, class_regions, diagnose_transporter,
                                                        keypoint_spread, pair_motion,
                                                        reconstruction_error_maps, region_error_shares,
                                                        window_pair_indices)
from permakey_tf.models import ops
from permakey_tf.models.transporter import Transporter

from object_boxes import SIZE, box, one_frame
from tiny_transporter import TINY, transporter_frames


def _model(seed: int = 0) -> Transporter:
    keras.utils.set_random_seed(seed)
    model = Transporter(TINY)
    model(transporter_frames(seed, 2))
    return model


def _scaled(frames):
    return tf.constant(frames.astype(np.float32) / 255.0)


def test_reconstruction_with_the_own_keypoints_is_the_transport_pass():
    model = _model()
    source, target = _scaled(transporter_frames(1)), _scaled(transporter_frames(2))
    outputs = model.transport_images(source, target)
    again = model.reconstruct_with_keypoints(source, target, outputs["source_keypoints"],
                                             outputs["target_keypoints"])
    np.testing.assert_array_equal(again.numpy(), outputs["reconstruction"].numpy())


def test_no_keypoints_decode_the_source_alone():
    """Without Gaussian maps nothing is pasted: the target frame cannot change the output, and
    keypoints placed on the frame do change it."""
    model = _model()
    source = _scaled(transporter_frames(1))
    first = model.reconstruct_with_keypoints(source, _scaled(transporter_frames(2)), None, None)
    second = model.reconstruct_with_keypoints(source, _scaled(transporter_frames(3)), None, None)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    keypoints = tf.zeros((6, 2, 2))
    pasted = model.reconstruct_with_keypoints(source, _scaled(transporter_frames(3)), keypoints, keypoints)
    assert np.abs(pasted.numpy() - second.numpy()).max() > 1e-5  # the untrained decoder is nearly flat


def test_keypoint_spread_of_flat_and_peaked_weights():
    """Uniform weights on an n-point linspace(-1, 1) grid have variance (n + 1) / (3 (n - 1)) per
    axis; a one-cell peak has none."""
    n, size = 8, 16
    flat = np.full((1, n, 1), 1.0 / n)
    expected = np.sqrt(2 * (n + 1) / (3 * (n - 1))) * (size - 1) / 2
    np.testing.assert_allclose(keypoint_spread(flat, flat, size), [[expected]], rtol=1e-6)
    peak = np.zeros((1, n, 1))
    peak[0, 3, 0] = 1.0
    np.testing.assert_allclose(keypoint_spread(peak, peak, size), [[0.0]], atol=1e-9)


def test_a_model_whose_keypoints_cannot_move_gains_nothing_from_them():
    """Zero heatmap weights and biases: every frame gets the same flat heatmaps, so the keypoints
    are their own fixed layout (ratio 1, no motion) and their spread is the flat heatmap's."""
    model = _model()
    conv = model.keypointer.heatmap_conv
    conv.kernel.assign(tf.zeros_like(conv.kernel))
    conv.bias.assign(tf.zeros_like(conv.bias))
    diagnosis = diagnose_transporter(model, transporter_frames(4, 10), transporter_frames(5, 10), batch_size=4)
    assert diagnosis.pairs == 10
    assert diagnosis.loss_ratio_fixed == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(diagnosis.keypoint_motion_px, 0.0, atol=1e-3)
    np.testing.assert_allclose(diagnosis.fixed_layout_px, [[8.0, 8.0]] * 2, atol=1e-3)
    heatmaps = model(transporter_frames(4, 1))["heatmaps"]
    flat = keypoint_spread(*[w.numpy() for w in ops.heatmap_marginals(heatmaps)], 16)[0]
    np.testing.assert_allclose(diagnosis.heatmap_spread_px, flat, rtol=1e-5)
    # Random frames differ almost everywhere; copying the source is the pair's own difference.
    assert diagnosis.changed_pixel_share > 0.8
    expected_copy = np.mean((transporter_frames(4, 10) / 255.0 - transporter_frames(5, 10) / 255.0) ** 2)
    assert diagnosis.mse_copy_source == pytest.approx(expected_copy, rel=1e-5)
    assert diagnosis.change_map.shape == (16, 16)


def test_identical_frames_change_nothing():
    model = _model()
    frames = transporter_frames(6, 4)
    diagnosis = diagnose_transporter(model, frames, frames)
    assert diagnosis.changed_pixel_share == 0.0 and diagnosis.mse_copy_source == 0.0
    assert diagnosis.mse_own_changed == 0.0 and diagnosis.keypoint_share_of_changed_error == 0.0


def test_mismatched_pairs_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        diagnose_transporter(_model(), transporter_frames(1, 3), transporter_frames(2, 4))


# ----------------------------------------------------------------- data-dependent output offset
def test_initialise_from_data_sets_the_mean_colour_only_when_asked():
    colour = np.array([144, 72, 17], np.uint8)
    frames = np.broadcast_to(colour, (4, 16, 16, 3)).copy()
    frames[:, :4] = 255  # a white strip: the mean is not the background colour
    expected = frames.reshape(-1, 3).mean(axis=0) / 255.0
    batches = [(frames, frames[::-1])]
    model = Transporter(TINY.replace(decoder_offset_init="data_mean"))
    model(transporter_frames(0, 2))
    model.initialise_from_data(batches)
    beta = model.decoder.output_norm.beta.numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-beta)), expected, rtol=1e-5)
    keras.utils.set_random_seed(0)
    untouched = Transporter(TINY.replace(decoder_offset_init="zero"))
    untouched(transporter_frames(0, 2))
    before = [w.numpy() for w in untouched.weights]
    untouched.initialise_from_data(batches)  # "zero", both codes' behaviour: nothing changes
    for a, b in zip(before, untouched.weights):
        np.testing.assert_array_equal(a, b.numpy())
    with pytest.raises(ValueError, match="no frames"):
        model.initialise_from_data([])


def test_window_pairs_stay_inside_one_window_of_one_episode():
    # Episode 0: 25 frames (two windows of 10, a partial one dropped); episode 1: 9 frames (none).
    episode_ids = np.r_[np.zeros(25, int), np.ones(9, int)]
    sources, targets = window_pair_indices(episode_ids, window_length=10, source_range=(0, 4),
                                           target_range=(5, 9))
    assert len(sources) == 2 * 4 * 4
    window = sources // 10
    assert np.array_equal(window, targets // 10) and set(window) == {0, 1}
    assert set(sources % 10) == {0, 1, 2, 3} and set(targets % 10) == {5, 6, 7, 8}
    assert targets.max() < 20  # never the dropped partial window nor episode 1
    empty = window_pair_indices(np.zeros(5, int), 10, (0, 4), (5, 9))
    assert empty[0].size == 0


def test_pair_motion_counts_the_pairs_where_a_class_moved():
    n = 6
    positions = {
        "Ball_x": np.arange(n, dtype=float) * 3, "Ball_y": np.zeros(n),      # 3 px per frame
        "Paddle_x": np.zeros(n), "Paddle_y": np.r_[0.0, 0, 0, 5, 5, 5],        # one jump
        "Gone_x": np.full(n, np.nan), "Gone_y": np.full(n, np.nan),           # never present
    }
    sources, targets = np.arange(n - 1), np.arange(1, n)  # consecutive frames
    motion = pair_motion(positions, sources, targets, moved_px=2.0)
    assert motion["Ball"] == {"pairs": 5, "moved_share": 1.0, "median_px": 3.0}
    assert motion["Paddle"]["moved_share"] == pytest.approx(1 / 5) and motion["Paddle"]["median_px"] == 0.0
    assert motion["Gone"]["pairs"] == 0 and np.isnan(motion["Gone"]["moved_share"])


def test_class_regions_cover_the_boxes_of_both_frames_grown_by_the_margin():
    """A ball that moved covers where it was and where it is; the score, the same box in both
    frames, covers it once; every other pixel is outside objects."""
    names = ("Ball", "Score")
    source = one_frame([box(10, 20, 12, 22), box(60, 0, 70, 6)], labels=[0, 1], class_names=names)
    target = one_frame([box(30, 20, 32, 22), box(60, 0, 70, 6)], labels=[0, 1], class_names=names)
    regions = class_regions(source, target, SIZE, margin_px=1)
    assert set(regions) == {"Ball", "Score", OUTSIDE_OBJECTS}
    ball = regions["Ball"][0]
    assert ball[19:23, 9:13].all() and ball[19:23, 29:33].all()  # both places, margin 1
    assert ball.sum() == 2 * 4 * 4 and not ball[19:23, 13:29].any()
    assert regions["Score"][0].sum() == 7 * 12  # rows 0-6 (clipped at the top), columns 59-70
    outside = regions[OUTSIDE_OBJECTS][0]
    assert outside.sum() == SIZE * SIZE - 2 * 16 - 84 and not (outside & ball).any()


def test_class_regions_refuse_pairs_that_do_not_match():
    first = one_frame([box(1, 1, 2, 2)], class_names=("Ball",))
    with pytest.raises(ValueError, match="same pairs"):
        class_regions(first, first.take(np.array([0, 0])), SIZE)
    with pytest.raises(ValueError, match="class names"):
        class_regions(one_frame([box(1, 1, 2, 2)]), one_frame([box(1, 1, 2, 2)]), SIZE)


def test_region_error_shares_say_where_the_error_is():
    error = np.zeros((1, 4, 4))
    error[0, 0, 0] = 3.0  # three quarters of the error on one pixel of region "a"
    error[0, 3, 3] = 1.0
    a = np.zeros((1, 4, 4), bool)
    a[0, :2, :2] = True
    shares = region_error_shares(error, {"a": a, "rest": ~a})
    assert shares["a"] == {"error_share": 0.75, "area_share": 0.25}
    assert shares["rest"] == {"error_share": 0.25, "area_share": 0.75}
    assert region_error_shares(np.zeros((1, 4, 4)), {"a": a})["a"]["error_share"] == 0.0


def test_reconstruction_error_maps_are_the_squared_errors_of_each_reconstruction():
    model = _model()
    source, target = transporter_frames(1), transporter_frames(2)
    maps = reconstruction_error_maps(model, source, target, batch_size=4)  # two batches
    s, t = _scaled(source), _scaled(target)
    expected_copy = ((s.numpy() - t.numpy()) ** 2).sum(-1)
    np.testing.assert_allclose(maps["copy_source"], expected_copy, rtol=1e-6)
    own = model.transport_images(s, t)["reconstruction"].numpy()
    np.testing.assert_allclose(maps["own"], ((own - t.numpy()) ** 2).sum(-1), rtol=1e-5, atol=1e-7)
    none = model.reconstruct_with_keypoints(s, t, None, None).numpy()
    np.testing.assert_allclose(maps["no_keypoints"], ((none - t.numpy()) ** 2).sum(-1), rtol=1e-5, atol=1e-7)
    assert not np.allclose(maps["own"], maps["no_keypoints"])
