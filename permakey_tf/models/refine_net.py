"""Transporter's decoder (the "refine net"): transported features back to an RGB frame.

Conv-Norm-ReLU blocks with 2x bilinear upsampling after the configured blocks, then a conv to RGB
with one of three outputs (``TransporterConfig.decoder_output``): "bn_sigmoid" (conv -> BatchNorm
-> sigmoid, the authors' re-implementation), "sigmoid", or "linear" (DeepMind's plain conv). The
sigmoid runs in float32 under mixed precision; the bilinear resize too (XLA refuses mixed types in
its gradient).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from permakey_tf.config import TransporterConfig
from permakey_tf.models.batch_norm import FusedBatchNormalization
from permakey_tf.models.networks import ConvStack


@keras.saving.register_keras_serializable(package="permakey_tf")
class RefineNet(keras.layers.Layer):
    """Transporter's decoder: Conv-Norm-ReLU blocks with 2x bilinear upsampling, then conv to RGB.

    Call:
      features ``[B, h, w, C]`` -> image ``[B, h * 2^u, w * 2^u, 3]`` float32, u = number of
      upsamplings; in [0, 1] for the sigmoid outputs, unbounded for "linear".
    """

    def __init__(
        self,
        filters,
        upsample_after,
        output_mode: str = "bn_sigmoid",
        norm: str = "batch",
        kernel_size: int = 3,
        output_channels: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output_mode not in TransporterConfig.DECODER_OUTPUTS:
            raise ValueError(
                f"output_mode must be one of {TransporterConfig.DECODER_OUTPUTS}, "
                f"got {output_mode!r}"
            )
        self.filters = tuple(int(f) for f in filters)
        self.upsample_after = tuple(sorted(int(i) for i in upsample_after))
        self.output_mode = output_mode
        self.norm = norm
        self.kernel_size = int(kernel_size)
        self.output_channels = int(output_channels)
        # Consecutive blocks between upsamplings form one ConvStack ("level").
        bounds = [0] + [i + 1 for i in self.upsample_after if i + 1 < len(self.filters)]
        bounds.append(len(self.filters))
        self.levels = []
        for j, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            n = stop - start
            self.levels.append(
                ConvStack(
                    [self.kernel_size] * n, self.filters[start:stop], [1] * n, norm=norm,
                    name=f"level{j}",
                )
            )
        self.level_ends = tuple(b - 1 for b in bounds[1:])
        self.output_conv = keras.layers.Conv2D(
            self.output_channels, self.kernel_size, padding="same",
            use_bias=output_mode != "bn_sigmoid", name="output_conv",
        )
        self.output_norm = None
        if output_mode == "bn_sigmoid":
            self.output_norm = FusedBatchNormalization(name="output_bn")

    def _upsampled(self, shape, times: int):
        return (shape[0], None if shape[1] is None else shape[1] * 2 ** times,
                None if shape[2] is None else shape[2] * 2 ** times, shape[3])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for level, end in zip(self.levels, self.level_ends):
            level.build(shape)
            shape = level.compute_output_shape(shape)[-1]
            shape = self._upsampled(shape, self.upsample_after.count(end))
        self.output_conv.build(shape)
        if self.output_norm is not None:
            self.output_norm.build(self.output_conv.compute_output_shape(shape))
        self.built = True

    def _upsample(self, x, times: int):
        # float32 resize: XLA refuses mixed bfloat16/float32 types in ResizeBilinearGrad.
        x = tf.cast(x, tf.float32) if times else x
        for _ in range(times):
            height, width = x.shape[1], x.shape[2]
            x = tf.image.resize(x, (2 * height, 2 * width), method="bilinear")
        return x

    def call(self, features, training=None):
        x = features
        for level, end in zip(self.levels, self.level_ends):
            x = level(x, training=training)[-1]
            x = tf.cast(self._upsample(x, self.upsample_after.count(end)), x.dtype)
        x = self.output_conv(x)
        if self.output_norm is not None:
            x = self.output_norm(x, training=training)
        x = tf.cast(x, tf.float32)
        if self.output_mode in ("sigmoid", "bn_sigmoid"):
            x = tf.sigmoid(x)
        return x

    def set_output_offset(self, colour) -> None:
        """Sets the output layer's per-channel offset so that a zero pre-activation decodes to
        ``colour`` (``[output_channels]`` in (0, 1); clipped to [0.01, 0.99] before the logit of
        the sigmoid outputs): BatchNorm's beta for "bn_sigmoid", the conv's bias otherwise."""
        import numpy as np

        colour = np.asarray(colour, np.float64).reshape(self.output_channels)
        if self.output_mode == "linear":
            offset = colour
        else:
            clipped = np.clip(colour, 0.01, 0.99)
            offset = np.log(clipped / (1.0 - clipped))
        target = self.output_norm.beta if self.output_norm is not None else self.output_conv.bias
        target.assign(tf.constant(offset, target.dtype))

    def compute_output_shape(self, input_shape):
        shape = self._upsampled(tuple(input_shape), len(self.upsample_after))
        return shape[:3] + (self.output_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, upsample_after=self.upsample_after, output_mode=self.output_mode,
            norm=self.norm, kernel_size=self.kernel_size, output_channels=self.output_channels,
        )
        return config
