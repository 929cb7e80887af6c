"""The contract of a keypoint model, and the keypoint network every model builds the same way.

:class:`KeypointModel` is the base class of every model in ``permakey_tf.models.registry``
(tests/test_registry.py checks it). Training, evaluation, export and the state probes call only
what it declares:

  * ``model(frames, training=False)``: uint8 frames ``[B, S, S, 3]`` -> dict with at least
    ``keypoints`` [B,K,2] (y, x) in [-1, 1], ``keypoints_pixels`` [B,K,2] (x, y) pixels,
    ``heatmaps`` [B,h,w,K], ``gaussian_maps`` [B,S,S,K]; an empty batch (B = 0) gives every
    output with 0 frames (``ops.empty_like_outputs``), never an error or NaN;
  * :meth:`predict_keypoints`: the inference outputs (may skip parts only training needs);
  * :meth:`window_feature_maps`: the feature maps a keypoint's window covers (state probes);
  * :meth:`statistics_pass`: one training-mode forward pass with no update but BatchNorm's
    statistics, over one training batch of the model's own kind (frames or pairs);
  * :meth:`named_optimizers`: the optimizers by the names the resume backup stores;
  * :meth:`restart_keypoint_network`: fresh keypoint-network weights and optimizer state (only
    called when the config's ``keypoint_network_restart_step`` is > 0);
  * the config round trip: ``get_config`` holds the config dataclass as a dict and
    ``from_config`` rebuilds the same model (``keras.models.load_model``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from permakey_tf.config import KeypointHeadConfig
from permakey_tf.models.networks import ConvStack


@keras.saving.register_keras_serializable(package="permakey_tf")
class KeypointNet(keras.layers.Layer):
    """The keypoint network of both models: a :class:`ConvStack` and a 1x1 conv to K heatmap
    logits, divided by a temperature. PermaKey runs it on error maps (the paper's "PointNet"),
    Transporter on frames (its "keypointer"); ``ops.heatmaps_to_keypoints`` turns the logits into
    coordinates.

    Args:
      kernels, filters, strides, norm, padding: the trunk (:class:`ConvStack`).
      num_keypoints: K, the number of heatmaps.
      temperature: the logits are divided by it (1 = the plain 1x1 conv output). A lower
        temperature sharpens the softmax of the keypoint reduction.

    Call:
      maps ``[B, H, W, C]`` -> heatmap logits ``[B, H / prod(strides), W / prod(strides), K]``,
      float32. ``batch_statistics`` as in :class:`ConvStack`; ``temperature`` (a scalar, e.g. an
      annealed one in training) replaces the layer's own for this call.
    """

    def __init__(self, kernels, filters, strides, num_keypoints: int, norm: str = "batch",
                 padding: str = "zero", temperature: float = 1.0, **kwargs):
        # Layer configs saved before the learned temperature and the spread prior were retired
        # hold them switched off.
        if kwargs.pop("learn_temperature", False) or kwargs.pop("prior_width", 0.0):
            raise ValueError("KeypointNet's learn_temperature and prior_width were retired; "
                             "load this model with an older version of permakey-tf")
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.kernels = tuple(int(k) for k in kernels)
        self.filters = tuple(int(f) for f in filters)
        self.strides = tuple(int(s) for s in strides)
        self.num_keypoints = int(num_keypoints)
        self.norm = norm
        self.padding = padding
        self.temperature = float(temperature)
        self.trunk = ConvStack(self.kernels, self.filters, self.strides, norm=norm, padding=padding,
                               name="trunk")
        self.heatmap_conv = keras.layers.Conv2D(self.num_keypoints, 1, name="heatmap_conv")

    def build(self, input_shape):
        self.trunk.build(input_shape)
        self.heatmap_conv.build(self.trunk.compute_output_shape(input_shape)[-1])
        self.built = True

    def call(self, maps, training=None, batch_statistics=False, temperature=None):
        features = self.trunk(maps, training=training, batch_statistics=batch_statistics)
        logits = tf.cast(self.heatmap_conv(features[-1]), tf.float32)
        if temperature is not None:
            return logits / tf.cast(temperature, tf.float32)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits

    def compute_output_shape(self, input_shape):
        last = self.trunk.compute_output_shape(input_shape)[-1]
        return last[:-1] + (self.num_keypoints,)

    def get_config(self):
        config = super().get_config()
        config.update(
            kernels=self.kernels,
            filters=self.filters,
            strides=self.strides,
            num_keypoints=self.num_keypoints,
            norm=self.norm,
            padding=self.padding,
            temperature=self.temperature,
        )
        return config


def keypoint_head(head: KeypointHeadConfig, kernels, filters, strides, norm: str,
                  name: str) -> KeypointNet:
    """A model's keypoint network: a Conv-Norm-ReLU stack (``kernels``, ``filters``,
    ``strides``, ``norm``) and K heatmaps, with the keypoint-bottleneck settings of ``head``
    (K, padding, heatmap temperature): PermaKey's PointNet and Transporter's keypointer."""
    return KeypointNet(kernels, filters, strides, head.num_keypoints, norm=norm,
                       padding=head.keypoint_padding, temperature=head.heatmap_temperature, name=name)


class KeypointModel(keras.Model):
    """Base class of the keypoint models (module docstring: the contract).

    Subclasses set :attr:`config_class` and implement :meth:`predict_keypoints`,
    :meth:`window_feature_maps` and :meth:`statistics_pass`.
    """

    config_class: type  # the model's config dataclass (a ConfigMixin), set by each subclass

    @classmethod
    def resolve_config(cls, config):
        """``config`` as the model's config dataclass: None = the defaults (the paper's), a dict =
        ``config_class.from_dict``; anything else is refused by name."""
        if config is None:
            return cls.config_class()
        if isinstance(config, dict):
            return cls.config_class.from_dict(config)
        if isinstance(config, cls.config_class):
            return config
        raise TypeError(f"{cls.__name__} takes a {cls.config_class.__name__} or its dict, got "
                        f"{type(config).__name__}; build it with {cls.config_class.__name__}"
                        ".for_game(...) or .from_dict(...)")

    # ------------------------------------------------------------------ config round trip
    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        return cls(config=cls.resolve_config(config.pop("config", None)), **config)

    # ------------------------------------------------------------------ what callers use
    def named_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """The optimizers by name (after compile): ``{"optimizer": ...}`` for a model with one."""
        optimizer = getattr(self, "optimizer", None)
        return {"optimizer": optimizer} if isinstance(optimizer, keras.optimizers.Optimizer) else {}

    def predict_keypoints(self, frames) -> dict:
        """Inference outputs for uint8 frames ``[B, S, S, 3]`` (see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict_keypoints")

    def window_feature_maps(self, frames) -> list:
        """float32 feature maps ``[B, h, w, C]`` (one or more) that a keypoint's window covers."""
        raise NotImplementedError(f"{type(self).__name__} must implement window_feature_maps")

    def initialise_from_data(self, batches) -> None:
        """Data-dependent initialisation, once, before the first step of a new run (not on
        resume). ``batches`` are training batches as ``fit`` receives them. Default: nothing."""
        del batches

    def statistics_pass(self, data) -> None:
        """One training-mode forward pass over a training batch, updating only BatchNorm's
        moving statistics (``batch_norm.recompute_statistics``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement statistics_pass")

    def restart_keypoint_network(self, seed: int) -> None:
        """Fresh weights (drawn with ``seed``) and optimizer state for the keypoint network only,
        at the config's ``keypoint_network_restart_step`` (train.py's ``RestartKeypointNetwork``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot restart its keypoint network")
