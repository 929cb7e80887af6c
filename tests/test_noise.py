"""Noisy-Atari bars: reproducible per seed, where the mask says, the configured geometry."""

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.data.noise import NOISE_MODES, NoiseConfig, add_bars, bar_mask


def _frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(0, 256, size=(count, 84, 84, 3), dtype=np.uint8))


def _starts(covered):
    """First covered index per frame for a bool [N, L] line mask."""
    return np.argmax(covered, axis=1)


def test_same_seed_same_bars_other_seed_other_bars():
    frames = _frames(8)
    config = NoiseConfig(mode="both")
    noisy_a, mask_a = add_bars(frames, 7, config)
    noisy_b, mask_b = add_bars(frames, 7, config)
    noisy_c, mask_c = add_bars(frames, 8, config)
    np.testing.assert_array_equal(noisy_a.numpy(), noisy_b.numpy())
    np.testing.assert_array_equal(mask_a.numpy(), mask_b.numpy())
    assert not np.array_equal(mask_a.numpy(), mask_c.numpy())
    # A [2] seed tensor works and differs from the scalar one.
    _, mask_d = add_bars(frames, tf.constant([7, 1]), config)
    assert not np.array_equal(mask_a.numpy(), mask_d.numpy())


@pytest.mark.parametrize("mode", ["vertical", "horizontal", "both"])
def test_overwrite_bars_land_where_the_mask_says(mode):
    frames = _frames(6, seed=1)
    config = NoiseConfig(mode=mode, colour=(128, 0, 255), blend="overwrite")
    noisy, mask = add_bars(frames, 3, config)
    noisy, mask, frames = noisy.numpy(), mask.numpy(), frames.numpy()
    assert mask.shape == (6, 84, 84) and mask.dtype == bool
    assert mask.any(axis=(1, 2)).all(), "every frame gets bars"
    np.testing.assert_array_equal(noisy[mask], np.broadcast_to([128, 0, 255], noisy[mask].shape))
    np.testing.assert_array_equal(noisy[~mask], frames[~mask])


def test_additive_bars_add_colour_and_clip():
    frames = _frames(4, seed=2)
    config = NoiseConfig(mode="both", colour=(128, 0, 255), blend="additive")
    noisy, mask = add_bars(frames, 5, config)
    noisy, mask, frames = noisy.numpy(), mask.numpy(), frames.numpy()
    expected = np.minimum(frames.astype(np.int32) + np.array([128, 0, 255]), 255).astype(np.uint8)
    np.testing.assert_array_equal(noisy[mask], expected[mask])
    np.testing.assert_array_equal(noisy[~mask], frames[~mask])
    # Clipping happened (blue + 255 saturates) and green is untouched.
    assert (noisy[mask][:, 2] == 255).all()
    np.testing.assert_array_equal(noisy[mask][:, 1], frames[mask][:, 1])


def test_vertical_bars_span_full_height_with_configured_width():
    config = NoiseConfig(mode="vertical", bar_width=5)
    mask = bar_mask([300, 84, 84, 3], config, seed=11).numpy()
    # Whole columns: every row of a frame is the same.
    assert (mask == mask[:, :1, :]).all()
    columns = mask[:, 0, :]  # [N, 84]
    assert (columns.sum(axis=1) == 5).all()
    starts = _starts(columns)
    for frame, start in enumerate(starts):
        assert columns[frame, start : start + 5].all()
    # Positions are drawn per frame and stay inside the frame.
    assert len(set(starts.tolist())) > 30
    assert starts.min() >= 0 and starts.max() <= 84 - 5


def test_horizontal_bars_span_full_width_and_cover_every_position():
    config = NoiseConfig(mode="horizontal", bar_width=3)
    mask = bar_mask([2000, 84, 84, 3], config, seed=4).numpy()
    assert (mask == mask[:, :, :1]).all()
    rows = mask[:, :, 0]
    assert (rows.sum(axis=1) == 3).all()
    starts = _starts(rows)
    # Uniform over 0..81: both ends are reached with 2,000 draws (miss chance ~ 1e-11).
    assert starts.min() == 0 and starts.max() == 84 - 3


def test_both_is_one_vertical_and_one_horizontal_bar():
    mask = bar_mask([50, 84, 84, 3], NoiseConfig(mode="both", bar_width=5), seed=9).numpy()
    full_rows = mask.all(axis=2).sum(axis=1)
    full_cols = mask.all(axis=1).sum(axis=1)
    np.testing.assert_array_equal(full_rows, 5)
    np.testing.assert_array_equal(full_cols, 5)
    np.testing.assert_array_equal(mask.sum(axis=(1, 2)), 2 * 5 * 84 - 25)


def test_num_bars_draws_several_bars_per_orientation():
    mask = bar_mask([200, 84, 84, 3], NoiseConfig(mode="vertical", num_bars=3, bar_width=2), 1)
    covered = mask.numpy()[:, 0, :].sum(axis=1)
    # Up to 3 bars of 2 columns; overlaps can merge them, but most frames show all three.
    assert covered.max() == 6 and covered.min() >= 2
    assert np.mean(covered == 6) > 0.8


def test_single_frame_and_mode_none():
    frame = _frames(1)[0]
    noisy, mask = add_bars(frame, 0, NoiseConfig(mode="vertical"))
    assert noisy.shape == (84, 84, 3) and mask.shape == (84, 84)
    assert mask.numpy().sum() == 5 * 84
    clean, no_mask = add_bars(frame, 0, NoiseConfig(mode="none"))
    np.testing.assert_array_equal(clean.numpy(), frame.numpy())
    assert not no_mask.numpy().any()


def test_works_inside_tf_function():
    fn = tf.function(lambda x: add_bars(x, tf.constant([3, 4], tf.int64), NoiseConfig(mode="both")))
    frames = _frames(3)
    graph_noisy, graph_mask = fn(frames)
    eager_noisy, eager_mask = add_bars(frames, [3, 4], NoiseConfig(mode="both"))
    np.testing.assert_array_equal(graph_noisy.numpy(), eager_noisy.numpy())
    np.testing.assert_array_equal(graph_mask.numpy(), eager_mask.numpy())


def test_bad_configuration_gives_clear_errors():
    with pytest.raises(ValueError) as error:
        NoiseConfig(mode="diagonal")
    for mode in NOISE_MODES:
        assert mode in str(error.value)
    with pytest.raises(ValueError, match="overwrite"):
        NoiseConfig(blend="multiply")
    with pytest.raises(ValueError, match="colour"):
        NoiseConfig(colour=(300, 0, 0))
    with pytest.raises(ValueError, match="bar_width"):
        NoiseConfig(bar_width=0)
    with pytest.raises(ValueError, match="bar_width"):
        add_bars(tf.zeros([4, 4, 3], tf.uint8), 0, NoiseConfig(mode="vertical", bar_width=5))
    with pytest.raises(TypeError, match="uint8"):
        add_bars(tf.zeros([84, 84, 3], tf.float32), 0, NoiseConfig(mode="vertical"))
    with pytest.raises(ValueError, match="RGB"):
        add_bars(tf.zeros([84, 84], tf.uint8), 0, NoiseConfig(mode="vertical"))


def test_config_round_trips_through_json_dict():
    config = NoiseConfig(mode="both", colour=(1, 2, 3), blend="additive", num_bars=2)
    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in config.to_dict().items()}
    assert NoiseConfig.from_dict(as_json) == config
