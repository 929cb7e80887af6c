"""FusedBatchNormalization computes what keras.layers.BatchNormalization computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models.batch_norm import FusedBatchNormalization, row_view, undo_row_view


def _pair(shape, **kwargs):
    """A Keras BatchNormalization and a fused one with identical, non-trivial weights."""
    plain = keras.layers.BatchNormalization(**kwargs)
    fused = FusedBatchNormalization(**kwargs)
    plain.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(0)
    channels = shape[-1] if kwargs.get("axis", -1) == -1 else shape[kwargs["axis"]]
    weights = [
        rng.uniform(0.5, 2.0, channels),  # gamma
        rng.normal(size=channels),  # beta
        rng.normal(size=channels),  # moving mean
        rng.uniform(0.5, 3.0, channels),  # moving variance
    ]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def _inputs(shape, seed=1):
    return tf.constant(np.random.default_rng(seed).normal(2.0, 3.0, shape), tf.float32)


def _forward_and_gradients(layer, x, training, relu=False):
    with tf.GradientTape() as tape:
        tape.watch(x)
        if isinstance(layer, FusedBatchNormalization):
            y = layer(x, training=training, relu=relu)
        else:
            y = layer(x, training=training)
            y = tf.nn.relu(y) if relu else y
        # A loss that weighs every output differently, so the gradients are not trivially zero.
        weights = tf.reshape(tf.range(tf.size(y), dtype=tf.float32) % 7.0 - 3.0, y.shape)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
    gradients = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return y, gradients


@pytest.mark.parametrize("training", [True, False])
def test_fused_matches_keras_outputs_gradients_and_moving_statistics(training):
    shape = (4, 6, 5, 3)
    plain, fused = _pair(shape, momentum=0.9)
    x = _inputs(shape)
    y_plain, g_plain = _forward_and_gradients(plain, x, training)
    y_fused, g_fused = _forward_and_gradients(fused, x, training)
    np.testing.assert_allclose(y_fused.numpy(), y_plain.numpy(), rtol=1e-4, atol=1e-4)
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)
    # Training moves the moving averages towards the batch's (biased) statistics, as Keras does.
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5, atol=1e-6
    )
    if training:
        batch_variance = np.var(x.numpy().reshape(-1, 3), axis=0)  # biased
        weights_before = _pair(shape, momentum=0.9)[0].moving_variance.numpy()
        expected = 0.9 * weights_before + 0.1 * batch_variance
        np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (6, 5)])  # fused, and the Keras fallback
def test_relu_argument_equals_relu_after_the_keras_layer(training, shape):
    plain, fused = _pair(shape, momentum=0.9)
    x = _inputs(shape)
    y_plain, g_plain = _forward_and_gradients(plain, x, training, relu=True)
    y_fused, g_fused = _forward_and_gradients(fused, x, training, relu=True)
    assert (y_plain.numpy() == 0).any() and (y_plain.numpy() > 0).any()  # the ReLU bites
    np.testing.assert_allclose(y_fused.numpy(), y_plain.numpy(), rtol=1e-4, atol=1e-4)
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)


def test_row_view_keeps_every_pixel_and_channel_and_restores_the_shape():
    x = _inputs((3, 4, 5, 2))
    rows = row_view(x)
    assert rows.shape == (12, 1, 5, 2)
    # Same values per channel, so the per-channel statistics are the same.
    np.testing.assert_array_equal(np.sort(rows.numpy().reshape(-1, 2), 0), np.sort(x.numpy().reshape(-1, 2), 0))
    np.testing.assert_array_equal(undo_row_view(rows, x).numpy(), x.numpy())


def test_unknown_batch_size_keeps_static_dims_and_the_relu_next_to_the_normalisation():
    shape = (4, 6, 5, 3)
    plain, fused = _pair(shape)
    function = tf.function(lambda x: fused(x, training=True, relu=True))
    graph = function.get_concrete_function(tf.TensorSpec([None, 6, 5, 3], tf.float32)).graph
    (output,) = [t for t in graph.outputs]
    assert output.shape.as_list() == [None, 6, 5, 3]
    # TensorFlow fuses a batch norm with a ReLU only when the ReLU reads the norm's output
    # directly (no reshape between them): the speed the row view must not cost.
    relus = [op for op in graph.get_operations() if op.type == "Relu"]
    assert len(relus) == 1 and relus[0].inputs[0].op.type == "FusedBatchNormV3"
    x = _inputs(shape)
    np.testing.assert_allclose(function(x).numpy(), tf.nn.relu(plain(x, training=True)).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_batch_statistics_mode_normalises_with_the_batch_and_changes_no_state():
    shape = (3, 4, 4, 2)
    _, fused = _pair(shape)
    before = [w.copy() for w in fused.get_weights()]
    x = _inputs(shape)
    y = fused(x, training=False, batch_statistics=True).numpy()
    values = x.numpy().reshape(-1, 2)
    gamma, beta = before[0], before[1]
    expected = (values - values.mean(0)) / np.sqrt(values.var(0) + fused.epsilon) * gamma + beta
    np.testing.assert_allclose(y.reshape(-1, 2), expected, rtol=1e-4, atol=1e-4)
    for a, b in zip(fused.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_mixed_bfloat16_output_dtype_and_agreement():
    shape = (4, 6, 6, 8)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    plain, fused = _pair(shape)
    x = tf.cast(_inputs(shape), tf.bfloat16)
    y_plain, g_plain = _forward_and_gradients(plain, x, True)
    y_fused, g_fused = _forward_and_gradients(fused, x, True)
    assert y_fused.dtype == tf.bfloat16 and fused.moving_mean.dtype == "float32"
    # bfloat16 keeps 8 bits of mantissa: agree to its rounding.
    np.testing.assert_allclose(
        tf.cast(y_fused, tf.float32).numpy(), tf.cast(y_plain, tf.float32).numpy(), atol=0.05, rtol=0.02
    )
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-3, atol=1e-3)
    for a, b in zip(g_fused[1:], g_plain[1:]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0.02, atol=0.05 * np.abs(b.numpy()).max())


@pytest.mark.parametrize("shape, axis", [((8, 5), -1), ((4, 3, 5, 5), 1)])
def test_unfusable_inputs_fall_back_to_keras(shape, axis):
    plain, fused = _pair(shape, axis=axis)
    x = _inputs(shape)
    y_plain, g_plain = _forward_and_gradients(plain, x, True)
    y_fused, g_fused = _forward_and_gradients(fused, x, True)
    np.testing.assert_allclose(y_fused.numpy(), y_plain.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-6)


def test_fused_layer_is_serialisable_and_loads_keras_weights():
    shape = (2, 3, 3, 4)
    plain, fused = _pair(shape, momentum=0.8, epsilon=1e-2)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fused))
    assert isinstance(clone, FusedBatchNormalization)
    assert clone.momentum == pytest.approx(0.8) and clone.epsilon == pytest.approx(1e-2)
    if not clone.built:
        clone.build(shape)
    clone.set_weights(plain.get_weights())
    x = _inputs(shape)
    np.testing.assert_allclose(clone(x).numpy(), plain(x).numpy(), rtol=1e-5, atol=1e-5)


def test_recompute_statistics_sets_the_average_batch_mean_and_variance():
    from permakey_tf.models.batch_norm import recompute_statistics

    layer = FusedBatchNormalization(momentum=0.99)
    layer.build((None, 5, 5, 3))
    batches = [_inputs((4, 5, 5, 3), seed=s) * (s + 1) for s in range(5)]
    count = recompute_statistics(layer, lambda x: layer(x, training=True), batches)
    assert count == 5
    means = [b.numpy().mean(axis=(0, 1, 2)) for b in batches]
    variances = [b.numpy().var(axis=(0, 1, 2)) for b in batches]
    np.testing.assert_allclose(layer.moving_mean.numpy(), np.mean(means, 0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), np.mean(variances, 0), rtol=1e-5)
    # Afterwards training updates are the layer's exponential moving average again.
    before = layer.moving_mean.numpy()
    layer(batches[0], training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.99 * before + 0.01 * means[0], rtol=1e-5)
    assert recompute_statistics(layer, lambda x: layer(x, training=True), []) == 0


def test_precise_statistics_make_permakey_keypoints_independent_of_the_batch():
    """With recomputed statistics and inference_batch_statistics=False, a frame gets the same
    keypoints alone, in any batch and in any order; with batch statistics it does not."""
    from permakey_tf.models.batch_norm import recompute_statistics
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.permakey import PermaKey

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 84, 84, 3), dtype=np.uint8)
    tiny = dict(encoder_filters=(4, 4, 4, 4), latent_dim=2, lsp_layers=(0,),
                lsp_hidden_widths=(8,), num_keypoints=3)
    model = PermaKey(PermaKeyConfig(**tiny, inference_batch_statistics=False))
    batches = [frames[i:i + 4] for i in range(0, 12, 4)]
    assert recompute_statistics(model, model.statistics_pass, batches) == 3
    together = model.predict_keypoints(frames)["keypoints_pixels"].numpy()
    alone = np.concatenate([model.predict_keypoints(frames[i:i + 1])["keypoints_pixels"].numpy()
                            for i in range(12)])
    reordered = model.predict_keypoints(frames[::-1])["keypoints_pixels"].numpy()[::-1]
    np.testing.assert_allclose(alone, together, atol=1e-3)
    np.testing.assert_allclose(reordered, together, atol=1e-3)
    batchwise = PermaKey(PermaKeyConfig(**tiny, inference_batch_statistics=True))
    batchwise.set_weights(model.get_weights())
    alone_b = np.concatenate([batchwise.predict_keypoints(frames[i:i + 1])["keypoints_pixels"].numpy()
                              for i in range(12)])
    together_b = batchwise.predict_keypoints(frames)["keypoints_pixels"].numpy()
    assert np.abs(alone_b - together_b).max() > 0.1


def test_recomputing_with_the_model_method_traces_once_and_restarts_the_average():
    """PreciseBatchNorm calls recompute_statistics(model, model.statistics_pass, ...) every
    epoch: the graph is traced once per model, and each call is a fresh plain average (the
    counter starts again at 0), equal to what a fresh trace computes with the current weights."""
    from permakey_tf.models.batch_norm import _statistics_pass, batch_norm_layers, recompute_statistics
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.permakey import PermaKey

    keras.utils.set_random_seed(0)
    frames = np.random.default_rng(0).integers(0, 256, (12, 84, 84, 3), dtype=np.uint8)
    model = PermaKey(PermaKeyConfig(encoder_filters=(4, 4, 4, 4), latent_dim=2, lsp_layers=(0,),
                                    lsp_hidden_widths=(8,), num_keypoints=3))
    batches = [frames[i:i + 4] for i in range(0, 12, 4)]
    assert recompute_statistics(model, model.statistics_pass, batches) == 3
    _, step = _statistics_pass(model, model.statistics_pass)
    assert step.experimental_get_tracing_count() == 1
    # New weights (as after an epoch of training), then the cached pass and a fresh one.
    model.set_weights([w * 1.5 if w.ndim > 1 else w for w in model.get_weights()])
    assert recompute_statistics(model, model.statistics_pass, batches[:2]) == 2
    assert step.experimental_get_tracing_count() == 1
    cached = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in batch_norm_layers(model)]
    assert recompute_statistics(model, lambda batch: model.statistics_pass(batch), batches[:2]) == 2
    for (mean, variance), layer in zip(cached, batch_norm_layers(model)):
        np.testing.assert_allclose(mean, layer.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, layer.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
