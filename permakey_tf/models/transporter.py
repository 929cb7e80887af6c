"""Transporter (Kulkarni et al. 2019), the baseline PermaKey is compared against, in Keras 3.

A feature encoder and a keypointer (Conv-Norm-ReLU stacks with their own weights, the keypointer
followed by a 1x1 conv to K heatmap logits) run on a source and a target frame of one episode. The
target's features are *transported* into the source's feature map around the keypoints, and a
refine net decodes the result into the target frame; the loss is the mean squared error of that
reconstruction. Source features and source keypoints are stop-gradient, so the model can only
lower the loss by putting target keypoints where the two frames differ.

Transport (per keypoint k, in order, m = Gaussian maps at the feature resolution)::

    f <- (1 - m_src_k) (1 - m_tgt_k) f + m_tgt_k f_tgt,   f starts as the source features.

Public API:
  * ``Transporter(config=None)``: ``TransporterConfig()`` defaults; ``compile()`` with no arguments
    uses Adam with the configured schedule (5e-4, x0.9 every 30,000 steps, staircase).
  * ``fit`` on a dataset of ``(source, target)`` tuples of uint8 ``[B, H, W, 3]`` frames.
  * ``call(frames)`` on uint8 ``[B, H, W, 3]`` returns the dict of docs/ARCHITECTURE.md:
    ``keypoints`` [B,K,2] (y, x) in [-1, 1]; ``keypoints_pixels`` [B,K,2] (x, y) pixels;
    ``heatmaps`` [B,h,w,K] logits; ``gaussian_maps`` [B,H,W,K].
  * ``transport(source, target)``: the pair forward pass (reconstruction, both keypoint sets), for
    figures and tests; ``reconstruct_with_keypoints(...)``: the reconstruction around given
    keypoints (or none), for diagnostics.
  * ``initialise_from_data(batches)``: before a new run's first step, the decoder's output offset
    from the frames' mean colour (``decoder_offset_init="data_mean"``, the default; both codes
    start it at zero).

Choices where the authors' re-implementation (docs/BACKGROUND.md section 5) and DeepMind's description /
code disagree. Every one is a ``TransporterConfig`` field; the default is the re-implementation's
*effective* behaviour because the PermaKey paper's Transporter numbers come from it:
  * first encoder kernel: 3 (re-implementation) vs 7 (DeepMind's code) -> ``encoder_kernels``.
  * decoder: re-implementation widths 128, 128, [2x bilinear], 64, 32, then conv to RGB;
    DeepMind's refine net halves its width at each level -> ``decoder_filters``,
    ``decoder_upsample_after``. Upsampling is bilinear in both.
  * output layer: conv -> BatchNorm -> sigmoid (re-implementation) vs a linear conv (DeepMind)
    -> ``decoder_output`` ("bn_sigmoid" default, "sigmoid", "linear"). The sigmoid is applied in
    float32 under mixed precision. Measured on the synthetic moving-square pairs of the tests
    (32x32, K = 2, 300 steps): "bn_sigmoid" put a keypoint on the square in 100% of test frames,
    "linear" reached a lower MSE but its keypoints had not left their start (17%, chance ~14%).
  * L2 weight regularisation: declared on every kernel (l2(0.1)) but never added to the loss by
    the re-implementation's custom loop, so its effective weight is 0 -> ``l2_weight`` = 0.
    DeepMind's code declares l2(1.0). When > 0 it is added to ``loss`` (``reconstruction_loss``
    stays the pure MSE).
  * normalisation: BatchNorm in both papers; DeepMind's code says layer / instance norm are much
    more stable -> ``norm`` ("batch" default, "layer", "instance": GroupNormalization with 1 group
    or one group per channel, i.e. per-channel scale/offset as Sonnet's LayerNorm).
  * learning rate: 5e-4 (the PermaKey paper's appendix A.2.2 for its Transporter; the authors' code
    ran 2e-4: ``--set learning_rate=2e-4``);
    schedule "paper" = x0.9 every 30,000 steps, staircase (docs/BACKGROUND.md section 5), "reference" =
    InverseTimeDecay as the authors' code actually ran -> ``lr_schedule``.
  * BatchNorm runs on source and target in two separate calls (as both codes), so each frame set
    is normalised with its own batch statistics and nothing from the target leaks into the
    stop-gradient source path.
  * frames are scaled to [0, 1] inside the model (uint8 in, as the rest of this project); the
    re-implementation also trains on [0, 1] frames.

Training options: ``compile(jit_compile=True)`` (XLA; "auto" only uses it on GPU), mixed precision
by setting ``keras.mixed_precision.set_global_policy("mixed_bfloat16" | "mixed_float16")`` before
building or loading the model (losses are computed in float32; mixed_float16 gets Keras's
LossScaleOptimizer), and under ``tf.distribute`` the loss is divided by ``num_replicas_in_sync``
inside the tape because gradients are summed over replicas.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from permakey_tf.models import ops
from permakey_tf.config import TransporterConfig
from permakey_tf.models.schedules import adam_with_schedule
from permakey_tf.models.keypoint_model import KeypointModel, keypoint_head
from permakey_tf.models.module_optimizers import zero_slots_of
from permakey_tf.models.networks import ConvStack
from permakey_tf.models.refine_net import RefineNet


def transport_features(
    source_features: tf.Tensor,
    target_features: tf.Tensor,
    source_maps: tf.Tensor,
    target_maps: tf.Tensor,
) -> tf.Tensor:
    """The transport step: moves target features into the source feature map around keypoints.

    Starting from the source features, for each keypoint k in order::

        f <- (1 - source_maps_k) (1 - target_maps_k) f + target_maps_k target_features

    i.e. features are suppressed around the source and target keypoint positions and the target's
    features are pasted around the target positions. ``source_features`` and ``source_maps`` are
    stop-gradient here: no gradient reaches the source frame's encoder or keypointer.

    Args:
      source_features: ``[B, h, w, C]``.
      target_features: ``[B, h, w, C]``.
      source_maps: ``[B, h, w, K]`` Gaussian maps of the source keypoints, in [0, 1].
      target_maps: ``[B, h, w, K]`` Gaussian maps of the target keypoints, in [0, 1].

    Returns:
      ``[B, h, w, C]`` transported features, ``target_features``' dtype.
    """
    if source_features.shape[1:3] != source_maps.shape[1:3]:
        raise ValueError(
            f"features {source_features.shape} and Gaussian maps {source_maps.shape} must have the "
            "same spatial size: render the maps at the feature resolution"
        )
    dtype = target_features.dtype
    features = tf.cast(tf.stop_gradient(source_features), dtype)
    source_maps = tf.cast(tf.stop_gradient(source_maps), dtype)
    target_maps = tf.cast(target_maps, dtype)
    for k in range(source_maps.shape[-1]):
        m_src = source_maps[..., k : k + 1]
        m_tgt = target_maps[..., k : k + 1]
        features = (1.0 - m_src) * (1.0 - m_tgt) * features + m_tgt * target_features
    return features


def _unpack_pair(data):
    """``(source, target)`` from what fit / train_on_batch pass to train_step: a dataset element
    ``(source, target)`` arrives as x, y; ``train_on_batch((source, target))`` as x = the pair."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    if y is None and isinstance(x, (tuple, list)) and len(x) == 2:
        x, y = x
    if y is None or isinstance(x, (tuple, list, dict)):
        raise ValueError(
            "Transporter trains on (source, target) pairs of uint8 frames [B, H, W, 3]; got "
            f"{type(data).__name__} without such a pair. Use the pair pipeline of permakey_tf.data.pipelines"
        )
    return x, y


def paper_optimizer(config: TransporterConfig) -> keras.optimizers.Optimizer:
    """Adam with the configured learning-rate schedule (see ``TransporterConfig.lr_schedule``)."""
    return adam_with_schedule(config.learning_rate, config.lr_decay_steps, config.lr_decay_rate,
                              config.lr_schedule, inverse_time_staircase=True)


@keras.saving.register_keras_serializable(package="permakey_tf")
class Transporter(KeypointModel):
    """Transporter keypoint model with its own train_step / test_step (see the module docstring).

    Args:
      config: ``TransporterConfig``; ``None`` = defaults.
      **kwargs: ``keras.Model`` arguments (name, ...).
    """

    config_class = TransporterConfig

    def __init__(self, config: TransporterConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config = self.resolve_config(config)
        self.encoder = ConvStack(config.encoder_kernels, config.encoder_filters, config.encoder_strides,
                                 norm=config.norm, name="encoder")
        self.keypointer = keypoint_head(config, config.encoder_kernels, config.encoder_filters,
                                        config.encoder_strides, config.norm, "keypointer")
        self.decoder = RefineNet(
            config.decoder_filters, config.decoder_upsample_after, config.decoder_output,
            norm=config.norm, name="decoder",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")

    # ----------------------------------------------------------------------------------- building
    def build(self, input_shape):
        shape = tuple(input_shape)
        self._check_frame_shape(shape)
        feature_shape = self.encoder.compute_output_shape(shape)[-1]
        # Sub-layers may already be built by a fit() that ran before the model was called.
        for layer, layer_shape in (
            (self.encoder, shape),
            (self.keypointer, shape),
            (self.decoder, feature_shape),
        ):
            if not layer.built:
                layer.build(layer_shape)
        self.built = True

    def _check_frame_shape(self, shape):
        size = self.config.image_size
        if len(shape) != 4 or tuple(shape[1:]) != (size, size, 3):
            raise ValueError(
                f"Transporter expects frames of shape [B, {size}, {size}, 3], got {tuple(shape)}; "
                "resize frames to config.image_size or change TransporterConfig.image_size"
            )

    def _scale(self, frames) -> tf.Tensor:
        """uint8 ``[B, H, W, 3]`` (or float in [0, 1]: ``ops.scale_frames``) -> the compute dtype
        in [0, 1]."""
        x = ops.scale_frames(frames, self.config.image_size, "Transporter")
        if not self.built:
            self.build(x.shape)
        return tf.cast(x, self.compute_dtype)

    # --------------------------------------------------------------------------- forward pieces
    def _features(self, images, training) -> tf.Tensor:
        """``[B, H, W, 3]`` in [0, 1] -> encoder features ``[B, h, w, C]``."""
        return self.encoder(images, training=training)[-1]

    def _keypoints(self, images, training) -> tuple[tf.Tensor, tf.Tensor]:
        """``[B, H, W, 3]`` in [0, 1] -> (heatmap logits ``[B, h, w, K]`` float32, keypoints
        ``[B, K, 2]`` (y, x) in [-1, 1])."""
        heatmaps = self.keypointer(images, training=training,
                                   temperature=self.training_temperature() if training else None)
        return heatmaps, ops.heatmaps_to_keypoints(heatmaps, self.config.keypoint_reduction)

    def training_temperature(self) -> tf.Tensor | None:
        """The keypointer's heatmap temperature at the optimizer's current step, float32 scalar,
        when the config anneals it (``heatmap_temperature_start`` -> ``heatmap_temperature``,
        geometrically over ``heatmap_temperature_anneal_steps``); None when it does not, or before
        the model has an optimizer (the layer's own ``heatmap_temperature`` then applies)."""
        c = self.config
        optimizer = getattr(self, "optimizer", None)
        if not c.heatmap_temperature_anneal_steps or optimizer is None:
            return None
        progress = tf.minimum(tf.cast(optimizer.iterations, tf.float32) / c.heatmap_temperature_anneal_steps, 1.0)
        return c.heatmap_temperature_start * (c.heatmap_temperature / c.heatmap_temperature_start) ** progress

    def transport_images(self, source, target, training=False) -> dict:
        """Pair forward pass on float images in [0, 1] (the differentiable core of the loss).

        Args:
          source, target: ``[B, H, W, 3]`` float in [0, 1].
          training: BatchNorm mode.

        Returns:
          dict: ``reconstruction`` [B,H,W,3] float32; ``source_keypoints`` / ``target_keypoints``
          [B,K,2] (y, x) in [-1, 1] (source stop-gradient); ``target_heatmaps`` [B,h,w,K].
        """
        _, source_keypoints = self._keypoints(source, training)
        source_keypoints = tf.stop_gradient(source_keypoints)
        target_heatmaps, target_keypoints = self._keypoints(target, training)
        reconstruction = self.reconstruct_with_keypoints(
            source, target, source_keypoints, target_keypoints, training=training)
        return {
            "reconstruction": reconstruction,
            "source_keypoints": source_keypoints,
            "target_keypoints": target_keypoints,
            "target_heatmaps": target_heatmaps,
        }

    def reconstruct_with_keypoints(self, source, target, source_keypoints, target_keypoints,
                                   training=False) -> tf.Tensor:
        """The target frame decoded from features transported around *given* keypoints.

        ``transport_images`` calls it with the keypointer's own keypoints; diagnostics call it with
        other ones (a fixed layout, or ``None`` for no keypoint at all) to ask how much the
        model's reconstruction owes to where its keypoints are.

        Args:
          source, target: ``[B, H, W, 3]`` float in [0, 1].
          source_keypoints, target_keypoints: ``[B, K, 2]`` (y, x) in [-1, 1], or ``None``: no
            Gaussian maps (all zero), so nothing is suppressed or pasted for that frame.
          training: BatchNorm mode.

        Returns:
          ``[B, H, W, 3]`` float32 reconstruction of ``target``.
        """
        sigma = self.config.keypoint_sigma
        source_features = tf.stop_gradient(self._features(source, training))
        target_features = self._features(target, training)
        height, width = target_features.shape[1], target_features.shape[2]

        def maps(keypoints):
            if keypoints is None:
                return tf.repeat(tf.zeros_like(target_features[..., :1]), self.config.num_keypoints, -1)
            return ops.keypoints_to_gaussian_maps(keypoints, height, width, sigma)

        transported = transport_features(source_features, target_features, maps(source_keypoints),
                                         maps(target_keypoints))
        return self.decoder(transported, training=training)

    def transport(self, source, target, training=False) -> dict:
        """``transport_images`` on uint8 frames ``[B, H, W, 3]``; also returns the target's
        ``keypoints_pixels`` [B,K,2] (x, y)."""
        outputs = self.transport_images(self._scale(source), self._scale(target), training)
        outputs["target_keypoints_pixels"] = ops.keypoints_to_pixels(
            outputs["target_keypoints"], self.config.image_size
        )
        return outputs

    def call(self, frames, training=False):
        """Keypoints of single frames.

        Args:
          frames: uint8 ``[B, H, W, 3]``.

        Returns:
          dict with ``keypoints`` [B,K,2] (y, x) in [-1, 1], ``keypoints_pixels`` [B,K,2] (x, y)
          pixels, ``heatmaps`` [B,h,w,K] logits, ``gaussian_maps`` [B,H,W,K] (float32).
        """
        if tf.convert_to_tensor(frames).shape[0] == 0:  # empty outputs of the right shapes
            return ops.empty_like_outputs(lambda one: self.call(one, training=False),
                                          self.config.image_size)
        heatmaps, keypoints = self._keypoints(self._scale(frames), training)
        size = self.config.image_size
        return {
            "keypoints": keypoints,
            "keypoints_pixels": ops.keypoints_to_pixels(keypoints, size),
            "heatmaps": heatmaps,
            "gaussian_maps": ops.keypoints_to_gaussian_maps(
                keypoints, size, size, self.config.keypoint_sigma
            ),
        }

    def initialise_from_data(self, batches) -> None:
        """With ``decoder_offset_init="data_mean"``: the decoder's output offset from the mean
        colour of the frames in ``batches`` (``(source, target)`` uint8 pairs); otherwise nothing."""
        if self.config.decoder_offset_init != "data_mean":
            return
        total, count = 0.0, 0
        for data in batches:
            for frames in _unpack_pair(data):
                frames = tf.cast(ops.scale_frames(frames, self.config.image_size, "Transporter"), tf.float64)
                total += tf.reduce_sum(frames, axis=[0, 1, 2]).numpy()
                count += int(frames.shape[0]) * int(frames.shape[1]) * int(frames.shape[2])
        if count == 0:
            raise ValueError("initialise_from_data got no frames: pass at least one training batch")
        self.decoder.set_output_offset(total / count)

    def statistics_pass(self, data) -> None:
        """The training-mode pair forward pass without any update but BatchNorm's statistics
        (``batch_norm.recompute_statistics``); ``data`` is a ``(source, target)`` batch."""
        source, target = _unpack_pair(data)
        self.transport_images(self._scale(source), self._scale(target), training=True)

    def restart_keypointer(self, seed: int) -> None:
        """Fresh keypointer weights (drawn with ``seed``) and a zeroed optimizer state (moments)
        for the keypointer's variables; the encoder, the decoder and their optimizer state are
        untouched. Draws through ``keras.utils.set_random_seed(seed)``, so the global Python /
        NumPy / TF generators are reseeded too."""
        keras.utils.set_random_seed(int(seed))
        c = self.config
        fresh = keypoint_head(c, c.encoder_kernels, c.encoder_filters, c.encoder_strides, c.norm,
                              "keypointer_restarted")
        fresh.build((None, c.image_size, c.image_size, 3))
        self.keypointer.set_weights(fresh.get_weights())
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and optimizer.built:
            zero_slots_of(optimizer, self.keypointer.trainable_variables)

    def restart_keypoint_network(self, seed: int) -> None:
        """The keypoint-model contract's restart: :meth:`restart_keypointer`."""
        self.restart_keypointer(seed)

    def predict_keypoints(self, frames):
        """Inference on single frames: ``call(frames, training=False)`` (the same method name as
        PermaKey's, which also skips its decoder)."""
        return self(frames, training=False)

    def window_feature_maps(self, frames) -> list:
        """The features a keypoint's Gaussian window covers, for state probes: the encoder's output
        (the features Transporter transports), inference mode.

        Args:
          frames: uint8 ``[B, H, W, 3]``.

        Returns:
          ``[features [B, h, w, C] float32]`` (a list, like PermaKey's).
        """
        return [tf.cast(self._features(self._scale(frames), training=False), tf.float32)]

    # ------------------------------------------------------------------------------- losses
    def _l2_penalty(self) -> tf.Tensor:
        kernels = [v for v in self.trainable_variables if "kernel" in v.path]
        return tf.add_n([tf.reduce_sum(tf.square(tf.cast(k, tf.float32))) for k in kernels])

    def _pair_losses(self, data, training) -> tuple[tf.Tensor, tf.Tensor]:
        """(total loss, reconstruction MSE), float32 scalars, from a ``(source, target)`` batch."""
        source, target = _unpack_pair(data)
        source, target = self._scale(source), self._scale(target)
        outputs = self.transport_images(source, target, training=training)
        reconstruction_loss = tf.reduce_mean(
            tf.square(tf.cast(target, tf.float32) - outputs["reconstruction"])
        )
        loss = reconstruction_loss
        if self.config.l2_weight > 0:
            loss = loss + self.config.l2_weight * self._l2_penalty()
        return loss, reconstruction_loss

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, reconstruction_loss = self._pair_losses(data, training=True)
            # Gradients are summed over replicas; scale so the update equals one device's.
            scaled = self.optimizer.scale_loss(loss / replicas)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        return self._update_metrics(loss, reconstruction_loss)

    def test_step(self, data):
        loss, reconstruction_loss = self._pair_losses(data, training=False)
        return self._update_metrics(loss, reconstruction_loss)

    def _update_metrics(self, loss, reconstruction_loss) -> dict:
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker]

    # --------------------------------------------------------------------- compile and saving
    def compile(self, optimizer=None, **kwargs):
        """``keras.Model.compile``; ``optimizer=None`` = Adam with the configured schedule.

        No ``loss`` is needed (train_step computes its own); ``jit_compile``, ``run_eagerly``,
        ``steps_per_execution`` pass through.
        """
        if kwargs.get("loss") is not None:
            raise ValueError("Transporter computes its own loss; call compile() without loss=")
        if optimizer is None:
            optimizer = paper_optimizer(self.config)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        """Replays ``compile`` on load and builds the optimizer on the model's variables, so that
        ``load_model`` restores the optimizer state (Keras skips both for a custom compile)."""
        config = keras.saving.deserialize_keras_object(config)
        config = {k: v for k, v in config.items() if v is not None or k == "optimizer"}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)
