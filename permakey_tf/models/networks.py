"""Building blocks of the models (Keras 3 layers): the Conv-Norm-ReLU stack, the VAE's latent head
and decoder, the local spatial prediction network. The keypoint network is in keypoint_model."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import keras
import tensorflow as tf

from permakey_tf.models import cell_grid, ops
from permakey_tf.models.batch_norm import FusedBatchNormalization, folded_kernel, folds_into_kernel

UPSAMPLING_MODES = ("bilinear", "nearest")


NORMALISATIONS = ("batch", "layer", "instance")


def make_normalisation(kind: str, name: str) -> keras.layers.Layer:
    """"batch": BatchNormalization (computed by the fused op, see permakey_tf.models.batch_norm);
    "layer": GroupNormalization with one group; "instance": one group per channel (per-channel
    scale and offset, as Sonnet's LayerNorm over space)."""
    if kind not in NORMALISATIONS:
        raise ValueError(f"norm must be one of {NORMALISATIONS}, got {kind!r}")
    if kind == "batch":
        return FusedBatchNormalization(name=name)
    return keras.layers.GroupNormalization(groups=1 if kind == "layer" else -1, name=name)


def apply_batch_norm(norm, x, training=None, batch_statistics=False, relu=False):
    """Applies a normalisation layer from :func:`make_normalisation` to ``x`` ``[B, H, W, C]``,
    then a ReLU if ``relu`` (inside the batch norm's fused op where it applies).

    ``batch_statistics=True`` (and not training) makes a batch norm normalise with the statistics
    of this batch (over every axis but the last) and its learned scale and offset, WITHOUT touching
    its moving averages: the research switch PermaKeyConfig.inference_batch_statistics uses (docs/BACKGROUND.md
    section 10). Layer / group norms always use per-example statistics and ignore it.
    """
    if isinstance(norm, FusedBatchNormalization):
        return norm(x, training=training, batch_statistics=bool(batch_statistics) and not training,
                    relu=relu)
    outputs = norm(x, training=training)
    return keras.ops.relu(outputs) if relu else outputs


def conv_norm_relu(conv: keras.layers.Conv2D, norm, x, training=None, batch_statistics=False):
    """``relu(norm(conv(x)))`` for a bias-free ``conv``. In inference with moving statistics a
    batch norm is an affine map, folded into the convolution's kernel and a bias
    (``batch_norm.folded_kernel``): one convolution with its bias and ReLU fused in, the same
    values. Otherwise as :func:`apply_batch_norm`."""
    if folds_into_kernel(norm, training, batch_statistics):
        kernel, bias = folded_kernel(norm, conv.kernel, conv.compute_dtype)
        return tf.nn.relu(tf.nn.bias_add(conv.convolution_op(tf.cast(x, kernel.dtype), kernel), bias))
    return apply_batch_norm(norm, conv(x), training, batch_statistics, relu=True)


@keras.saving.register_keras_serializable(package="permakey_tf")
class ConvStack(keras.layers.Layer):
    """A stack of Conv -> Norm -> ReLU blocks with "same" output sizes; returns every block's output.

    Used as the VAE encoder of PermaKey, as Transporter's encoder, and as the trunk of the
    keypoint network of both (:class:`KeypointNet`). Block i has ``kernels[i]``, ``filters[i]``,
    ``strides[i]``; ``norm`` is "batch" (default), "layer" or "instance" (see
    :func:`make_normalisation`); ``padding`` is how the borders are filled before each
    convolution: "zero" (Keras' "same"), "reflect" or "symmetric" (see
    :func:`ops.pad_for_same_conv`). The weights do not depend on the padding.

    Call:
      inputs ``[B, H, W, C]`` -> list of ``[B, H_i, W_i, filters[i]]`` (post-BN, post-ReLU).
      ``batch_statistics=True`` (inference only) normalises with the batch's own statistics and
      leaves the moving averages alone (see :func:`apply_batch_norm`). In inference with the
      moving statistics each batch norm is folded into its convolution (``batch_norm.folded_kernel``).
    """

    def __init__(
        self,
        kernels: Sequence[int],
        filters: Sequence[int],
        strides: Sequence[int],
        norm: str = "batch",
        padding: str = "zero",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ops.PADDING_MODES:
            raise ValueError(f"padding must be one of {ops.PADDING_MODES}, got {padding!r}")
        self.norm = norm
        self.padding = padding
        self.kernels = tuple(int(k) for k in kernels)
        self.filters = tuple(int(f) for f in filters)
        self.strides = tuple(int(s) for s in strides)
        if not (len(self.kernels) == len(self.filters) == len(self.strides)):
            raise ValueError("kernels, filters and strides need equal lengths")
        conv_padding = "same" if padding == "zero" else "valid"
        self.convs = [
            keras.layers.Conv2D(f, k, strides=s, padding=conv_padding, use_bias=False, name=f"conv{i}")
            for i, (k, f, s) in enumerate(zip(self.kernels, self.filters, self.strides))
        ]
        prefix = "bn" if norm == "batch" else "norm"
        self.norms = [make_normalisation(norm, f"{prefix}{i}") for i in range(len(self.filters))]

    def _output_size(self, size, stride):
        return None if size is None else -(-size // stride)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm, stride in zip(self.convs, self.norms, self.strides):
            conv.build(shape)
            shape = (shape[0], self._output_size(shape[1], stride), self._output_size(shape[2], stride),
                     conv.filters)
            norm.build(shape)
        self.built = True

    def padded(self, index, x):
        """``x`` bordered for block ``index``'s convolution (unchanged for zero padding, which
        the convolution does itself)."""
        if self.padding == "zero":
            return x
        return ops.pad_for_same_conv(x, self.kernels[index], self.strides[index], self.padding)

    def call(self, inputs, training=None, batch_statistics=False):
        outputs = []
        x = inputs
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv_norm_relu(conv, norm, self.padded(index, x), training, batch_statistics)
            outputs.append(x)
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = []
        shape = tuple(input_shape)
        for filters, stride in zip(self.filters, self.strides):
            shape = (shape[0], self._output_size(shape[1], stride), self._output_size(shape[2], stride),
                     filters)
            shapes.append(shape)
        return shapes

    def get_config(self):
        config = super().get_config()
        config.update(
            kernels=self.kernels, filters=self.filters, strides=self.strides, norm=self.norm,
            padding=self.padding,
        )
        return config


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


@keras.saving.register_keras_serializable(package="permakey_tf")
class GaussianLatentHead(keras.layers.Layer):
    """VAE latent head: flattened features -> mean and softplus standard deviation.

    ``mean = x W_m / sqrt(n) + b_m``; ``scale = softplus(x W_s / sqrt(n) + b_s) + min_scale`` with n
    the flattened feature size (56,448 for 21x21x128). Guard against the collapse of docs/BACKGROUND.md
    section 10: with a plain Dense each Adam step moves a pre-activation by about
    ``lr * n * mean|x|`` (several units at lr 2e-4), so the scale falls to the softplus floor within
    a few steps, its gradient vanishes and the KL term freezes; the mean oscillates likewise. Here
    the products are divided by sqrt(n) (an "equalised learning rate": the mean kernel starts as
    N(0, 1), which gives the same initial spread as a Glorot Dense), so a step moves them by about
    ``lr * sqrt(n) * mean|x|``; the scale kernel starts at zero with a bias giving scale 1 (the
    prior's).

    Call:
      features ``[B, H, W, C]`` -> ``(mean [B, D], scale [B, D])``, float32.
    """

    def __init__(self, latent_dim: int, min_scale: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.min_scale = float(min_scale)

    def build(self, input_shape):
        fan_in = int(math.prod(input_shape[1:]))
        self._fan_in = fan_in
        self.mean_kernel = self.add_weight(
            name="mean_kernel",
            shape=(fan_in, self.latent_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.mean_bias = self.add_weight(name="mean_bias", shape=(self.latent_dim,), initializer="zeros")
        self.scale_kernel = self.add_weight(
            name="scale_kernel", shape=(fan_in, self.latent_dim), initializer="zeros"
        )
        self.scale_bias = self.add_weight(
            name="scale_bias",
            shape=(self.latent_dim,),
            initializer=keras.initializers.Constant(_inverse_softplus(1.0)),
        )
        self.built = True

    def call(self, features):
        flat = tf.reshape(features, [tf.shape(features)[0], self._fan_in])
        kernel = tf.concat([self.mean_kernel, self.scale_kernel], axis=1)
        product = tf.cast(tf.matmul(flat, tf.cast(kernel, flat.dtype)), tf.float32)
        product = product / math.sqrt(self._fan_in)
        mean = product[:, : self.latent_dim] + tf.cast(self.mean_bias, tf.float32)
        pre_scale = product[:, self.latent_dim :] + tf.cast(self.scale_bias, tf.float32)
        scale = tf.nn.softplus(pre_scale) + self.min_scale
        return mean, scale

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim), (input_shape[0], self.latent_dim)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, min_scale=self.min_scale)
        return config


@keras.saving.register_keras_serializable(package="permakey_tf")
class Decoder(keras.layers.Layer):
    """VAE decoder: latent -> Dense(h*w) -> h x w x 1 -> the encoder's blocks in reverse -> image.

    Reverse block i: 2x (stride_i x) upsampling if the encoder's block i was strided, then
    Conv(filters[i], kernels[i]) -> BN -> ReLU; a final 3x3 conv to the image channels and a
    sigmoid. ``h = w = image_size / prod(strides)``. The paper undoes the striding with bilinear
    upsampling, the reference code with nearest (``upsampling``).

    Call:
      latent ``[B, D]`` -> ``[B, image_size, image_size, channels]`` in ``[0, 1]`` (compute dtype).
    """

    def __init__(
        self,
        image_size: int,
        kernels: Sequence[int],
        filters: Sequence[int],
        strides: Sequence[int],
        upsampling: str = "bilinear",
        channels: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
        self.image_size = int(image_size)
        self.kernels = tuple(int(k) for k in kernels)
        self.filters = tuple(int(f) for f in filters)
        self.strides = tuple(int(s) for s in strides)
        self.upsampling = upsampling
        self.channels = int(channels)
        total_stride = math.prod(self.strides)
        if self.image_size % total_stride:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the encoder's total stride "
                f"{total_stride}; change image_size or encoder_strides"
            )
        self.grid_size = self.image_size // total_stride
        self.seed_dense = keras.layers.Dense(self.grid_size * self.grid_size, name="seed_dense")
        self.blocks = []
        for i in reversed(range(len(self.filters))):
            upsample = self.strides[i] if self.strides[i] > 1 else None
            conv = keras.layers.Conv2D(
                self.filters[i], self.kernels[i], padding="same", use_bias=False, name=f"conv{i}"
            )
            self.blocks.append((upsample, conv, FusedBatchNormalization(name=f"bn{i}")))
        self.output_conv = keras.layers.Conv2D(self.channels, 3, padding="same", name="output_conv")

    def build(self, input_shape):
        self.seed_dense.build(input_shape)
        shape = (input_shape[0], self.grid_size, self.grid_size, 1)
        for upsample, conv, norm in self.blocks:
            if upsample is not None:
                shape = (shape[0], shape[1] * upsample, shape[2] * upsample, shape[3])
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
        self.output_conv.build(shape)
        self.built = True

    def _upsample(self, x, factor):
        # Resized in float32 and cast back: under mixed_bfloat16 XLA rejects the bf16/f32 mix
        # that keras.layers.UpSampling2D's bilinear gradient produces.
        size = [x.shape[1] * factor, x.shape[2] * factor]
        return tf.cast(tf.image.resize(tf.cast(x, tf.float32), size, method=self.upsampling), x.dtype)

    def call(self, latent, training=None):
        x = self.seed_dense(latent)
        x = tf.reshape(x, [-1, self.grid_size, self.grid_size, 1])
        for upsample, conv, norm in self.blocks:
            if upsample is not None:
                x = self._upsample(x, upsample)
            x = conv_norm_relu(conv, norm, x, training)
        return keras.ops.sigmoid(self.output_conv(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            kernels=self.kernels,
            filters=self.filters,
            strides=self.strides,
            upsampling=self.upsampling,
            channels=self.channels,
        )
        return config


@keras.saving.register_keras_serializable(package="permakey_tf")
class LocalSpatialPredictor(keras.layers.Layer):
    """Local Spatial Prediction Network (LSPN) for one feature layer.

    Predicts every p x p cell of a feature map (all channels, ``d = p^2 C`` values) from its 8
    neighbouring cells (zero outside the map): an MLP
    ``Dense(h_0) -> BN -> ReLU -> ... -> Dense(h_last) -> BN -> ReLU -> Dense(d)`` applied to every
    cell, as in the paper (hidden widths ``(8 d, 512, 256)`` by default).

    Fast form (used by default): ``cell_grid.extract_neighbour_patches`` followed by the first Dense is
    the same linear map as a 3x3 convolution, stride 1, "same" zero padding, over the cell grid
    ``space_to_depth(features, p)`` with the centre tap of the kernel masked to zero; the weight is
    stored in that 3x3 form and :func:`cell_grid.neighbour_conv` computes it from the cell grid's ring
    of neighbours (built once, reused by the kernel gradient), without the centre tap's work.
    The remaining layers act per cell (Dense on the last axis).
    In inference (moving statistics) the batch norms are folded into the kernels before them and
    the Dense layers run as 1x1 convolutions (:meth:`_folded_inference`). The straightforward
    patch-extraction form, with the same weights, is kept outside the library as the reference
    both forms are tested against (``bench/lspn_forms.py``).

    Call:
      features ``[B, H, W, C]`` -> ``(prediction, target)``, both ``[B, gh, gw, p^2 C]`` with
      ``gh = ceil(H / p)`` ("pad") or ``floor(H / p)`` ("crop"); ``target`` is the aligned
      centre cell (the features themselves; callers pass stop-gradient features).
    """

    def __init__(
        self,
        patch_size: int = 2,
        hidden_widths: Optional[Sequence[int]] = None,
        odd_size_rule: str = "pad",
        border: str = "zero",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if border not in cell_grid.LSP_BORDERS:
            raise ValueError(f"border must be one of {cell_grid.LSP_BORDERS}, got {border!r}")
        self.border = border
        if odd_size_rule not in cell_grid.ODD_SIZE_RULES:
            raise ValueError(f"odd_size_rule must be one of {cell_grid.ODD_SIZE_RULES}, got {odd_size_rule!r}")
        if int(patch_size) < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.patch_size = int(patch_size)
        self.hidden_widths = None if hidden_widths is None else tuple(int(w) for w in hidden_widths)
        if self.hidden_widths is not None and not self.hidden_widths:
            raise ValueError("hidden_widths needs at least one width (or None for the paper's)")
        self.odd_size_rule = odd_size_rule

    def resolved_widths(self, channels: int) -> tuple[int, ...]:
        """The hidden widths for a feature map with ``channels`` channels."""
        if self.hidden_widths is not None:
            return self.hidden_widths
        return (8 * self.patch_size**2 * channels, 512, 256)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        cell_depth = self.patch_size**2 * channels
        self.cell_depth = cell_depth
        widths = self.resolved_widths(channels)
        self.first_kernel = self.add_weight(
            name="first_kernel",
            shape=(3, 3, cell_depth, widths[0]),
            initializer=keras.initializers.GlorotUniform(),
        )
        self.norms = [FusedBatchNormalization(name=f"bn{i}") for i in range(len(widths))]
        self.denses = [
            keras.layers.Dense(w, use_bias=False, name=f"dense{i + 1}") for i, w in enumerate(widths[1:])
        ]
        self.output_dense = keras.layers.Dense(cell_depth, name="output_dense")
        for i, width in enumerate(widths):
            self.norms[i].build((None, None, None, width))
            if i + 1 < len(widths):
                self.denses[i].build((None, width))
        self.output_dense.build((None, widths[-1]))
        self.built = True

    def ring_kernel(self) -> tf.Tensor:
        """The first layer as the Dense kernel over the ring: ``[8 p^2 C, h_0]`` (patch order)."""
        return cell_grid.ring_kernel(tf.convert_to_tensor(self.first_kernel))

    def call(self, features, training=None, batch_statistics=False):
        aligned = cell_grid.align_to_cells(features, self.patch_size, self.odd_size_rule)
        target = tf.nn.space_to_depth(aligned, self.patch_size)  # [B, gh, gw, p^2 C]
        if folds_into_kernel(self.norms[0], training, batch_statistics):
            return self._folded_inference(target), target
        x = cell_grid.neighbour_conv(target, tf.cast(self.first_kernel, target.dtype), self.border)
        return self.cell_layers(x, training, batch_statistics), target

    def cell_layers(self, x, training=None, batch_statistics=False):
        """The layers after the first, per cell: ``[B, gh, gw, h_0]`` first-layer outputs (before
        its batch norm) -> ``[B, gh, gw, p^2 C]`` predictions."""
        for i, norm in enumerate(self.norms):
            x = apply_batch_norm(norm, x, training, batch_statistics, relu=True)
            x = self.denses[i](x) if i < len(self.denses) else self.output_dense(x)
        return x

    def _folded_inference(self, cells):
        """The prediction in inference, ``cells [B, gh, gw, d]`` -> ``[B, gh, gw, d]``: every batch
        norm (moving statistics) folded into the kernel before it and a bias, the per-cell Dense
        layers as 1x1 convolutions, so that each layer is one convolution with its bias and ReLU
        fused in (no normalisation pass over the activations). The same values as the layer-by-
        layer form; docs/PERFORMANCE.md has the speed."""
        dtype = cells.dtype
        kernel, bias = folded_kernel(self.norms[0], self.first_kernel, dtype)
        x = tf.nn.relu(tf.nn.bias_add(cell_grid.neighbour_conv(cells, kernel, self.border), bias))
        for norm, dense in zip(self.norms[1:], self.denses):
            kernel, bias = folded_kernel(norm, dense.kernel, dtype)
            x = tf.nn.relu(ops.pointwise_conv(x, kernel, bias))
        kernel = tf.cast(self.output_dense.kernel, dtype)
        return ops.pointwise_conv(x, kernel, tf.cast(self.output_dense.bias, dtype))

    def compute_output_shape(self, input_shape):
        p = self.patch_size
        round_ = math.ceil if self.odd_size_rule == "pad" else math.floor
        cells = (input_shape[0], round_(input_shape[1] / p), round_(input_shape[2] / p))
        depth = p * p * input_shape[-1]
        return cells + (depth,), cells + (depth,)

    def get_config(self):
        config = super().get_config()
        config.update(
            patch_size=self.patch_size, hidden_widths=self.hidden_widths, odd_size_rule=self.odd_size_rule,
            border=self.border,
        )
        return config
