"""In inference the batch norms are folded into the kernels before them (batch_norm.folded_kernel):
the LSPN and the ConvStack blocks compute the same values as convolution -> batch norm -> ReLU
layer by layer, with trained-looking (non-trivial) scales, offsets and moving statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models import cell_grid
from permakey_tf.models.batch_norm import FusedBatchNormalization, batch_norm_layers, folded_kernel, folds_into_kernel
from permakey_tf.models.networks import ConvStack, Decoder, LocalSpatialPredictor


def _randomise_batch_norms(layer, seed=0):
    """Scales, offsets, moving means and variances far from their initial 1 / 0 / 0 / 1."""
    rng = np.random.default_rng(seed)
    for norm in batch_norm_layers(layer):
        channels = norm.moving_mean.shape[-1]
        norm.gamma.assign(rng.uniform(0.5, 2.0, channels))
        norm.beta.assign(rng.normal(size=channels))
        norm.moving_mean.assign(rng.normal(size=channels))
        norm.moving_variance.assign(rng.uniform(0.3, 3.0, channels))


def _layer_by_layer_lspn(lspn, features):
    """The LSPN's prediction computed as its layers are written: the first layer over the 8 neighbours,
    then batch norm (moving statistics, Keras' formula) -> ReLU -> Dense for every hidden layer."""
    aligned = cell_grid.align_to_cells(features, lspn.patch_size, lspn.odd_size_rule)
    cells = tf.nn.space_to_depth(aligned, lspn.patch_size)
    x = cell_grid.neighbour_conv(cells, tf.cast(lspn.first_kernel, cells.dtype), lspn.border)
    for i, norm in enumerate(lspn.norms):
        x = tf.nn.relu(norm(x, training=False))
        x = lspn.denses[i](x) if i < len(lspn.denses) else lspn.output_dense(x)
    return x


def _keras_reference_norm(norm):
    """A plain keras.layers.BatchNormalization with ``norm``'s weights."""
    plain = keras.layers.BatchNormalization(epsilon=norm.epsilon)
    plain.build((None, None, None, norm.moving_mean.shape[-1]))
    plain.set_weights(norm.get_weights())
    return plain


@pytest.mark.parametrize("border", ["zero", "replicate"])
def test_folded_lspn_equals_the_layer_by_layer_form(border):
    keras.utils.set_random_seed(4)
    lspn = LocalSpatialPredictor(2, hidden_widths=(32, 16, 8), border=border)
    features = tf.constant(np.maximum(np.random.default_rng(1).normal(size=(3, 10, 12, 4)), 0), tf.float32)
    lspn(features)
    _randomise_batch_norms(lspn)
    folded, target = lspn(features, training=False)
    expected = _layer_by_layer_lspn(lspn, features)
    assert folded.shape == expected.shape == target.shape
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # ... and it is not the untrained map: the statistics above matter.
    assert np.abs(expected).max() > 0.1


def test_lspn_keras_formula_reference_is_what_the_fused_layer_computes():
    """The reference above uses the fused layer in inference; check it against Keras' own
    batch norm, so that the folded form is tied to Keras' formula, not only to ours."""
    keras.utils.set_random_seed(5)
    lspn = LocalSpatialPredictor(2, hidden_widths=(16, 8))
    features = tf.constant(np.random.default_rng(2).uniform(size=(2, 8, 8, 3)), tf.float32)
    lspn(features)
    _randomise_batch_norms(lspn, seed=3)
    hidden = tf.constant(np.random.default_rng(3).normal(size=(2, 4, 4, 16)), tf.float32)
    norm = lspn.norms[0]
    np.testing.assert_allclose(norm(hidden, training=False), _keras_reference_norm(norm)(hidden, training=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding, policy", [("zero", "float32"), ("reflect", "float32"),
                                             ("reflect", "mixed_bfloat16")])
def test_folded_convstack_equals_conv_norm_relu(padding, policy):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(6)
    stack = ConvStack([3, 3, 1], [16, 32, 8], [1, 2, 1], padding=padding)
    x = tf.constant(np.random.default_rng(4).uniform(size=(3, 12, 12, 3)), tf.float32)
    stack(x)
    _randomise_batch_norms(stack, seed=5)
    folded = stack(x, training=False)
    h = x
    for index, norm in enumerate(stack.norms):
        h = tf.nn.relu(_keras_reference_norm(norm)(stack.convs[index](stack.padded(index, h)), training=False))
        got, want = tf.cast(folded[index], tf.float32).numpy(), tf.cast(h, tf.float32).numpy()
        assert folded[index].dtype == stack.compute_dtype
        if policy == "float32":
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
        else:  # bfloat16 keeps 8 bits of mantissa
            assert np.abs(got - want).mean() < 0.02 * np.abs(want).mean()


def test_folded_decoder_equals_conv_norm_relu():
    keras.utils.set_random_seed(9)
    decoder = Decoder(image_size=16, kernels=[3, 3], filters=[6, 4], strides=[2, 2])
    latent = tf.constant(np.random.default_rng(8).normal(size=(2, 5)), tf.float32)
    decoder(latent)
    _randomise_batch_norms(decoder, seed=9)
    x = tf.reshape(decoder.seed_dense(latent), [-1, decoder.grid_size, decoder.grid_size, 1])
    for upsample, conv, norm in decoder.blocks:
        if upsample is not None:
            x = decoder._upsample(x, upsample)
        x = tf.nn.relu(_keras_reference_norm(norm)(conv(x), training=False))
    expected = keras.ops.sigmoid(decoder.output_conv(x))
    np.testing.assert_allclose(decoder(latent, training=False), expected, rtol=1e-5, atol=1e-6)


def test_folded_kernel_is_rounded_once_under_mixed_bfloat16():
    """Inside a mixed-precision call Keras hands out kernels already rounded to bfloat16; the
    fold multiplies the float32 kernel by the scale and rounds the product once."""
    from keras.src.backend.common.variables import AutocastScope

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(10)
    stack = ConvStack([3], [64], [1])
    stack(tf.zeros([1, 6, 6, 8]))
    _randomise_batch_norms(stack, seed=10)
    conv, norm = stack.convs[0], stack.norms[0]
    with AutocastScope("bfloat16"):  # what the stack's own call sees
        kernel, bias = folded_kernel(norm, conv.kernel, tf.bfloat16)
    scale, offset = norm.inference_affine()
    expected = tf.cast(tf.constant(conv.kernel.numpy()) * scale, tf.bfloat16)
    np.testing.assert_array_equal(tf.cast(kernel, tf.float32), tf.cast(expected, tf.float32))
    np.testing.assert_array_equal(tf.cast(bias, tf.float32), tf.cast(tf.cast(offset, tf.bfloat16), tf.float32))


def test_folding_applies_to_inference_with_moving_statistics_only():
    norm = FusedBatchNormalization()
    norm.build((None, 4, 4, 3))
    assert folds_into_kernel(norm, training=False)
    assert not folds_into_kernel(norm, training=True)
    assert not folds_into_kernel(norm, training=False, batch_statistics=True)
    assert not folds_into_kernel(keras.layers.GroupNormalization(groups=1), training=False)


def test_folded_inference_graph_has_no_batch_norm_op():
    """The point of the folding: the inference graph of an LSPN, a ConvStack and a decoder runs
    no normalisation pass over the activations (training still does)."""
    keras.utils.set_random_seed(7)
    lspn = LocalSpatialPredictor(2, hidden_widths=(8, 4))
    stack = ConvStack([3], [4], [1])
    decoder = Decoder(image_size=8, kernels=[3], filters=[4], strides=[2])
    x = tf.zeros([1, 6, 6, 2])

    def op_types(training):
        graph = tf.function(lambda v: [lspn(v, training=training)[0], stack(v, training=training)[-1],
                                       decoder(tf.reshape(v, [1, -1]), training=training)])
        return {op.type for op in graph.get_concrete_function(tf.TensorSpec(x.shape)).graph.get_operations()}

    assert not any("BatchNorm" in t for t in op_types(False))
    assert any("BatchNorm" in t for t in op_types(True))


def test_mixed_bfloat16_folded_lspn_agrees_with_the_layer_by_layer_form():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(8)
    lspn = LocalSpatialPredictor(2, hidden_widths=(64, 32, 16))
    features = tf.constant(np.maximum(np.random.default_rng(6).normal(size=(2, 12, 12, 8)), 0), tf.bfloat16)
    lspn(features)
    _randomise_batch_norms(lspn, seed=7)
    folded, _ = lspn(features, training=False)
    expected = _layer_by_layer_lspn(lspn, features)
    assert folded.dtype == tf.bfloat16
    folded, expected = (tf.cast(t, tf.float32).numpy() for t in (folded, expected))
    # bfloat16 keeps 8 bits of mantissa, and the folded kernel is rounded once more.
    assert np.abs(folded - expected).mean() < 0.02 * np.abs(expected).mean()
