"""Batch normalisation as one fused TensorFlow op, and the inference statistics it uses.

:class:`FusedBatchNormalization` is a drop-in subclass of ``keras.layers.BatchNormalization``
computed by TensorFlow's fused kernel (``FusedBatchNormV3``: one pass for the statistics, one to
normalise, float32 accumulation whatever the input dtype) instead of Keras' chain of separate
ops. Contract: the same variables (gamma, beta, moving_mean, moving_variance), the same config
and the same results as the Keras layer (tests/test_batch_norm.py compares outputs, gradients and
moving statistics); it falls back to the Keras computation wherever the fused op does not apply
(another backend, rank other than 4, a normalised axis other than the last, a mask, renorm,
synchronised statistics).

Two details of the fused op are handled here. The layer normalises the "row view"
``[B * H, 1, W, C]`` of a ``[B, H, W, C]`` input and reshapes back (the statistics over every axis
but the last are the same; oneDNN's kernel is faster on that shape), and ``relu=True`` applies the
ReLU inside that view so that TensorFlow fuses it into the normalisation. In training the fused
op returns the unbiased batch variance; like Keras, the layer averages the biased one into
``moving_variance``.

In inference the normalisation is an affine map per channel (:meth:`FusedBatchNormalization.
inference_affine`); the networks fold it into the kernel of the layer before it
(:func:`folds_into_kernel`, :func:`folded_kernel`), so the served keypoint path runs no
normalisation pass.

:func:`recompute_statistics` ("precise BatchNorm") replaces the moving averages of every such
layer in a model by the plain average of the batch statistics of the current weights over some
batches: the population statistics inference should use. Exponential moving averages lag behind
weights that change quickly, and PermaKey's error maps amplify that lag (docs/ARCHITECTURE.md).
The timings behind these choices are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras
import tensorflow as tf

FUSED_INPUT_DTYPES = (tf.float32, tf.bfloat16, tf.float16)


@keras.saving.register_keras_serializable(package="permakey_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by ``tf.raw_ops.FusedBatchNormV3``.

    Call:
      inputs ``[B, H, W, C]`` (normalised over B, H, W) -> same shape, the layer's compute dtype.
      ``batch_statistics=True`` (inference only) normalises with the statistics of this batch and
      the learned scale and offset, leaving the moving averages alone: PermaKey's scoring mode
      (docs/BACKGROUND.md section 10). ``relu=True`` returns ``relu(normalised)``, computed with
      the normalisation in one op where the fused op applies. Other ranks and options fall back
      to the Keras computation.
    """

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and rank == 4
            and mask is None
            and not self.renorm
            and not getattr(self, "synchronized", False)
            and self.axis in (-1, rank - 1)
            and tf.as_dtype(inputs.dtype) in FUSED_INPUT_DTYPES
        )

    def call(self, inputs, training=None, mask=None, batch_statistics=False, relu=False):
        use_batch = bool(training) and self.trainable
        if not self._fusable(inputs, mask):
            if batch_statistics and not use_batch:
                outputs = self._batch_statistics_fallback(inputs)
            else:
                outputs = super().call(inputs, training=training, mask=mask)
            return keras.ops.relu(outputs) if relu else outputs
        x = tf.cast(inputs, self.compute_dtype)
        channels = x.shape[-1]
        gamma = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels])
        beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels])
        gamma, beta = tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32)
        rows = row_view(x)
        if use_batch or batch_statistics:
            empty = tf.zeros([0], tf.float32)
            outputs, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=rows, scale=gamma, offset=beta, mean=empty, variance=empty,
                epsilon=self.epsilon, is_training=True,
            )
            if use_batch:
                count = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
                variance = unbiased_variance * tf.maximum(count - 1.0, 0.0) / count
                self._update_moving_statistics(mean, variance)
        else:
            outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=rows, scale=gamma, offset=beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, is_training=False,
            )
        if relu:  # inside the view: fused into the normalisation (module docstring)
            outputs = tf.nn.relu(outputs)
        return undo_row_view(outputs, x)

    def inference_affine(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The normalisation with the moving statistics as one affine map per channel:
        float32 ``(scale [C], offset [C])`` with ``output = inputs * scale + offset``."""
        channels = self.moving_mean.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        scale = gamma * tf.math.rsqrt(tf.cast(self.moving_variance, tf.float32) + self.epsilon)
        return scale, beta - tf.cast(self.moving_mean, tf.float32) * scale

    def _update_moving_statistics(self, mean, variance):
        momentum = self.momentum
        counter = getattr(self, "_precise_counter", None)
        if counter is not None:  # recompute_statistics: the running plain average
            momentum = 1.0 - 1.0 / (tf.cast(counter, tf.float32) + 1.0)
        mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
        self.moving_mean.assign(tf.cast(self.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            tf.cast(self.moving_variance, tf.float32) * momentum + variance * (1.0 - momentum)
        )

    def _batch_statistics_fallback(self, inputs):
        """Batch statistics over every axis but the last, in float32 (the unfused form)."""
        values = tf.cast(inputs, tf.float32)
        axes = list(range(len(values.shape) - 1))
        mean, variance = tf.nn.moments(values, axes=axes, keepdims=True)
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else 1.0
        beta = tf.cast(self.beta, tf.float32) if self.center else 0.0
        normalized = (values - mean) * tf.math.rsqrt(variance + self.epsilon) * gamma + beta
        return tf.cast(normalized, self.compute_dtype)


def row_view(x: tf.Tensor) -> tf.Tensor:
    """``[B, H, W, C]`` -> ``[B * H, 1, W, C]``, the same values (the shape oneDNN's batch norm
    runs fastest on; the statistics over all axes but the last do not change)."""
    static, dynamic = x.shape.as_list(), tf.shape(x)
    batch, height, width, channels = (s if s is not None else dynamic[i] for i, s in enumerate(static))
    return tf.reshape(x, tf.stack([batch * height, 1, width, channels]))


def undo_row_view(rows: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """:func:`row_view` undone: ``rows`` back to the (static and dynamic) shape of ``like``."""
    outputs = tf.reshape(rows, tf.shape(like))
    outputs.set_shape(like.shape)
    return outputs


def folds_into_kernel(norm: keras.layers.Layer, training, batch_statistics=False) -> bool:
    """Whether ``norm`` normalises with its moving statistics in this call, so that it is an
    affine map per channel (:meth:`FusedBatchNormalization.inference_affine`) which the linear
    layer before it can absorb into its kernel and a bias (:func:`folded_kernel`)."""
    return (isinstance(norm, FusedBatchNormalization) and not training and not batch_statistics
            and norm.axis in (-1, 3))


def folded_kernel(norm: FusedBatchNormalization, kernel, dtype) -> tuple[tf.Tensor, tf.Tensor]:
    """``kernel [..., C]`` of the linear map before ``norm`` with ``norm``'s inference scale
    multiplied into its output channels, and the bias that completes the normalisation:
    ``norm(x @ kernel) == x @ kernel' + bias`` (in inference). Both cast to ``dtype`` (the
    layer's compute dtype); the product is taken in float32."""
    scale, offset = norm.inference_affine()
    return tf.cast(float32_value(kernel) * scale, dtype), tf.cast(offset, dtype)


def float32_value(variable) -> tf.Tensor:
    """A float variable's value in float32, also inside a mixed-precision layer's call, where
    Keras hands out its float variables already rounded to the compute dtype (bfloat16): the
    folded kernel is rounded once, from the float32 product, not twice."""
    # Keras 3 has no public switch for this; a scope with no dtype turns the rounding off.
    from keras.src.backend.common.variables import AutocastScope

    with AutocastScope(None):
        return tf.cast(tf.convert_to_tensor(variable), tf.float32)


def batch_norm_layers(model: keras.layers.Layer) -> list[FusedBatchNormalization]:
    """Every FusedBatchNormalization inside ``model`` (itself included)."""
    return [layer for layer in model._flatten_layers(include_self=True)
            if isinstance(layer, FusedBatchNormalization)]


def _statistics_pass(model: keras.layers.Layer, forward: Callable) -> tuple[tf.Variable, Callable]:
    """The batch counter and the traced ``forward`` of :func:`recompute_statistics`.

    A bound method of the model (``model.statistics_pass``, called once per epoch by the
    PreciseBatchNorm callback) is traced once and its counter kept on the model, so later calls
    reuse the graph instead of tracing the whole network again (seconds per epoch on a 2-core
    CPU). The counter is captured by that graph, so it must stay the same variable. Any other
    callable (a lambda) gets a fresh counter and trace on every call.
    """
    function = getattr(forward, "__func__", None)
    if function is None or getattr(forward, "__self__", None) is not model:
        return tf.Variable(0, dtype=tf.int64, trainable=False), tf.function(forward)
    cache = getattr(model, "_statistics_passes", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_statistics_passes", cache)  # untracked: never saved
    if function not in cache:
        cache[function] = (tf.Variable(0, dtype=tf.int64, trainable=False), tf.function(forward))
    return cache[function]


def recompute_statistics(model: keras.layers.Layer, forward: Callable, batches: Iterable) -> int:
    """Sets every batch norm's moving mean / variance to the average batch mean / variance that
    ``forward`` produces over ``batches`` with the current weights ("precise BatchNorm").

    Args:
      model: holds the batch norms.
      forward: ``forward(batch)`` runs the model in training mode (batch statistics) without
        updating any weight; it is traced once (tf.function; once per model when it is a method
        of ``model``, such as ``model.statistics_pass``).
      batches: an iterable of batches (e.g. a few hundred training frames).

    Returns:
      the number of batches averaged (with none, nothing changes).
    """
    layers = batch_norm_layers(model)
    counter, step = _statistics_pass(model, forward)
    counter.assign(0)
    for layer in layers:  # not a tracked attribute: never saved with the model
        object.__setattr__(layer, "_precise_counter", counter)
    try:
        for batch in batches:
            step(batch)
            counter.assign_add(1)
    finally:
        for layer in layers:
            object.__setattr__(layer, "_precise_counter", None)
    return int(counter.numpy())
