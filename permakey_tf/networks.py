"""Building blocks shared by the models (Keras 3 layers)."""

from __future__ import annotations

from typing import Sequence

import keras


@keras.saving.register_keras_serializable(package="permakey_tf")
class ConvStack(keras.layers.Layer):
    """A stack of Conv -> BatchNorm -> ReLU blocks, padding "same"; returns every block's output.

    Used as the VAE encoder and PointNet trunk of PermaKey and as Transporter's encoder and
    keypointer. Block i has ``kernels[i]``, ``filters[i]``, ``strides[i]``.

    Call:
      inputs ``[B, H, W, C]`` -> list of ``[B, H_i, W_i, filters[i]]`` (post-BN, post-ReLU).
    """

    def __init__(
        self,
        kernels: Sequence[int],
        filters: Sequence[int],
        strides: Sequence[int],
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernels = tuple(int(k) for k in kernels)
        self.filters = tuple(int(f) for f in filters)
        self.strides = tuple(int(s) for s in strides)
        if not (len(self.kernels) == len(self.filters) == len(self.strides)):
            raise ValueError("kernels, filters and strides need equal lengths")
        self.convs = [
            keras.layers.Conv2D(f, k, strides=s, padding="same", use_bias=False, name=f"conv{i}")
            for i, (k, f, s) in enumerate(zip(self.kernels, self.filters, self.strides))
        ]
        self.norms = [keras.layers.BatchNormalization(name=f"bn{i}") for i in range(len(self.filters))]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        outputs = []
        x = inputs
        for conv, norm in zip(self.convs, self.norms):
            x = keras.ops.relu(norm(conv(x), training=training))
            outputs.append(x)
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = []
        shape = tuple(input_shape)
        for conv in self.convs:
            shape = conv.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def get_config(self):
        config = super().get_config()
        config.update(kernels=self.kernels, filters=self.filters, strides=self.strides)
        return config
