"""Building blocks in permakey_tf.models.networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench.lspn_forms import patch_form_prediction
from permakey_tf.models.networks import (
    ConvStack,
    Decoder,
    GaussianLatentHead,
    LocalSpatialPredictor,
)


def _relu_features(shape, seed=0):
    return np.maximum(np.random.default_rng(seed).normal(size=shape), 0).astype(np.float32)


@pytest.mark.parametrize(
    "shape, p, rule",
    [((2, 8, 8, 3), 2, "pad"), ((2, 7, 5, 4), 2, "pad"), ((2, 7, 5, 4), 2, "crop"), ((1, 9, 9, 2), 3, "pad")],
)
@pytest.mark.parametrize("training", [False, True])
def test_lspn_fast_form_equals_patch_extraction_form(shape, p, rule, training):
    keras.utils.set_random_seed(1)
    lspn = LocalSpatialPredictor(p, hidden_widths=(16, 8), odd_size_rule=rule)
    features = _relu_features(shape)
    fast, target = lspn(features, training=training)
    slow, _ = patch_form_prediction(lspn, features, training=training)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
    # The target is the cell itself, flattened (row, column, channel) like the patch extractor.
    from permakey_tf.models import cell_grid

    _, centre = cell_grid.extract_neighbour_patches(features, p, rule)
    np.testing.assert_array_equal(target, centre)


def test_lspn_prediction_ignores_the_centre_cell():
    keras.utils.set_random_seed(2)
    lspn = LocalSpatialPredictor(2, hidden_widths=(8,))
    features = _relu_features((1, 8, 8, 2))
    before, _ = lspn(features)
    changed = features.copy()
    changed[0, 2:4, 2:4] += 5.0  # the centre of cell (1, 1)
    after, _ = lspn(changed)
    np.testing.assert_allclose(before[0, 1, 1], after[0, 1, 1], rtol=1e-5)
    assert not np.allclose(before[0, 1, 2], after[0, 1, 2])  # a neighbour of it does change


def test_lspn_paper_widths():
    lspn = LocalSpatialPredictor(2)
    assert lspn.resolved_widths(32) == (1024, 512, 256)
    assert lspn.resolved_widths(64) == (2048, 512, 256)


def test_convstack_batch_statistics_leave_moving_averages_alone():
    keras.utils.set_random_seed(3)
    stack = ConvStack([3, 3], [4, 4], [1, 2])
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype(np.float32)
    stack.build(x.shape)
    moving = [v.numpy().copy() for v in stack.non_trainable_variables]
    scored = stack(x, training=False, batch_statistics=True)
    for old, new in zip(moving, stack.non_trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())
    trained = stack(x, training=True)  # batch statistics, updating the moving averages
    for a, b in zip(scored, trained):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    plain = stack(x, training=False)  # moving averages (barely moved from 0/1): different
    assert not np.allclose(plain[-1], scored[-1], atol=1e-3)


def test_latent_head_scale_starts_at_one_and_does_not_collapse():
    """Adam pushing the scale down as hard as it can for 20 steps (lr 2e-4, the paper's) on
    21x21x128 ReLU features: a plain Dense head falls to the floor, ours moves gradually."""
    features = tf.constant(_relu_features((4, 21, 21, 128)))

    def shrink(scale_fn, variables):
        optimizer = keras.optimizers.Adam(2e-4)
        for _ in range(20):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(scale_fn())
            optimizer.apply(tape.gradient(loss, variables), variables)
        return scale_fn().numpy()

    keras.utils.set_random_seed(4)
    head = GaussianLatentHead(32)
    head.build(features.shape)
    np.testing.assert_allclose(head(features)[1], 1.0 + head.min_scale, rtol=1e-5)
    guarded = shrink(lambda: head(features)[1], [head.scale_kernel, head.scale_bias])
    assert guarded.min() > 0.5

    plain = keras.layers.Dense(32)
    plain.build((None, 21 * 21 * 128))
    flat = tf.reshape(features, [4, -1])
    naive = shrink(lambda: tf.nn.softplus(plain(flat)), plain.trainable_variables)
    assert naive.max() < 0.05  # the failure the guard prevents


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_decoder_output(mode):
    decoder = Decoder(84, [4, 3, 3, 3], [4, 4, 4, 4], [1, 2, 2, 1], upsampling=mode)
    image = decoder(np.zeros((2, 8), np.float32))
    assert image.shape == (2, 84, 84, 3)
    assert decoder.grid_size == 21
    assert float(tf.reduce_min(image)) >= 0 and float(tf.reduce_max(image)) <= 1


def test_decoder_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        Decoder(85, [3], [4], [2])
    with pytest.raises(ValueError, match="upsampling"):
        Decoder(84, [3], [4], [2], upsampling="cubic")


@pytest.mark.parametrize("padding", ["reflect", "symmetric"])
def test_mirrored_padding_keeps_a_constant_image_constant_up_to_the_border(padding):
    # With zero padding the border rows and columns of a constant image get features of their
    # own; mirrored padding makes them equal to the interior ("same" output sizes kept).
    keras.utils.set_random_seed(0)
    image = np.full((1, 84, 84, 2), 0.7, np.float32)
    kwargs = dict(kernels=[4, 3, 3], filters=[4, 4, 4], strides=[1, 2, 1])
    mirrored = ConvStack(**kwargs, padding=padding)
    zero = ConvStack(**kwargs, padding="zero")
    zero.build(image.shape)
    mirrored.build(image.shape)
    mirrored.set_weights(zero.get_weights())
    for out_m, out_z, size in zip(mirrored(image, training=False), zero(image, training=False),
                                  (84, 42, 42)):
        assert out_m.shape == out_z.shape == (1, size, size, 4)
        assert float(tf.math.reduce_std(out_m)) < 1e-5
        assert float(tf.math.reduce_std(out_z)) > 1e-3
    with pytest.raises(ValueError, match="padding must be one of"):
        ConvStack(**kwargs, padding="wrap")
