"""PermaKey (Gopalakrishnan et al., "Unsupervised Object Keypoint Learning using Local Spatial
Predictability") as a Keras 3 model with its own ``train_step``.

Flow (one forward pass, three modules, no gradient between modules)::

    uint8/float frames [B,84,84,3] --(scale to [0,1])--> x
    x -> encoder (ConvStack: 4 x Conv-BN-ReLU) -> features f_0..f_3
         f_3 -> latent head (mean, softplus scale) -> z -> decoder -> reconstruction [B,84,84,3]
    stop_gradient(f_l) for l in lsp_layers -> LSPN_l: predict each p x p cell from its 8 neighbours
         -> per-cell error (RMSE or MSE over p^2 C) / (mean centre activation + 1e-3)
         -> laid back on the feature map -> nearest resize to 84x84 -> concat over layers
         -> per-image, per-channel min-max normalisation (with epsilon) = error_maps [B,84,84,L]
    stop_gradient(error_maps) -> PointNet (ConvStack + 1x1 conv) -> heatmaps [B,h,w,K]
         -> keypoints (y, x) in [-1, 1] -> Gaussian maps rendered at 84x84 [B,84,84,K]
    outputs only: keypoints moved by ``keypoint_refinement_steps`` mean-shift steps on the error
         maps (each to the centre of error mass under its window), their pixels and Gaussian maps

Losses (computed in float32, each minimised by its own Adam optimizer):
  * VAE: Gaussian likelihood with fixed variance ``vae_likelihood_variance`` averaged over
    pixels, ``0.5 * mean((x - x_hat)^2) / variance`` (the constant log-normaliser is dropped),
    plus ``kl_weight`` x KL(q(z|x) || N(0, I)) summed over latent dims, averaged over the batch.
    Relative to a standard ELBO that is a KL weight of ~84*84*3 = 21,000 (the reference's).
  * LSP: mean squared error over all cells and values, summed over the LSP layers.
  * PointNet: ``mean((sum_k gaussian_k - error_map_l)^2)`` over pixels, channels l and batch.

Training: ``train_step`` runs the forward pass once under three GradientTapes; each module's
gradients are applied by its own optimizer (one Keras 3 optimizer cannot serve disjoint variable
sets). Each loss is divided by ``num_replicas_in_sync`` inside the tape, so a MirroredStrategy
update equals the single-device one, and passed through ``optimizer.scale_loss`` (a no-op unless
the optimizer is a LossScaleOptimizer, which ``compile`` uses under ``mixed_float16``).

Deliberate differences from the authors' code (docs/BACKGROUND.md), each with its switch if any:
  * Learning rate: the paper's Adam 2e-4 x 0.85 every 10,000 steps (staircase), one optimizer per
    module. ``lr_schedule="reference"`` gives an InverseTimeDecay whose step counter advances 4x
    per batch, imitating the reference's shared optimizer (its exact decay constants are not in
    docs/BACKGROUND.md; we use lr_decay_steps / lr_decay_rate).
  * Decoder: bilinear upsampling (paper; ``decoder_upsampling="nearest"`` = reference). The
    reference ends with BatchNorm -> sigmoid; we end with a 3x3 conv -> sigmoid (a BatchNorm
    right before the output would tie the output's statistics to the batch).
  * Latent head: mean and softplus scale as the reference, but guarded against the scale's
    collapse to its floor (docs/BACKGROUND.md section 10): products divided by sqrt(fan_in) (equalised
    learning rate), scale kernel zero-initialised with a bias for scale 1; see
    networks.GaussianLatentHead. In evaluation/inference the decoder uses the posterior mean.
  * Odd feature sizes: ``odd_size_rule="pad"`` (21x21 -> 11x11 cells, every feature predicted)
    by default; ``"crop"`` drops the last row/column like the reference (10x10).
  * Error maps: RMSE (paper era; ``error_map_mode="mse"`` = later code), min-max normalisation
    with an epsilon (the reference yields NaN on a constant map).
  * Inference statistics: BatchNorm's moving averages, recomputed from the current weights over
    training batches (:meth:`PermaKey.recompute_batch_norm_statistics`, done by train.py before
    every validation), so a frame's outputs do not depend on its batch. Exponential moving
    averages that lag fast-changing weights can invert error maps (the maps divide by a
    near-zero background activation); recomputing removes the lag. ``inference_batch_statistics
    =True`` normalises with each batch's own statistics instead (outputs then depend on the
    batch).
  * The PointNet loss is computed in evaluation too (the reference only in training).
  * Output keypoints refined on the error maps (``keypoint_refinement_steps``, default 2; 0 = the
    PointNet's keypoints as the paper has them): the loss and training use the PointNet's own.
  * Gaussian maps are rendered directly at 84x84 rather than at heatmap size and resized.
  * LSPN first layer: stored as a centre-masked 3x3 kernel over the cell grid, the same linear map
    as patch extraction + Dense (tested); computed on the grid's ring of neighbour cells
    (``cell_grid.neighbour_conv``) rather than by extracting overlapping patches from the features.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from permakey_tf.models import cell_grid, ops
from permakey_tf.config import PermaKeyConfig
from permakey_tf.models.keypoint_model import KeypointModel
from permakey_tf.models.module_optimizers import ModuleOptimizers
from permakey_tf.models.pointnet import build_pointnet, keypoint_outputs, pointnet_loss
from permakey_tf.models.schedules import adam_with_schedule
from permakey_tf.models.networks import (
    ConvStack,
    Decoder,
    GaussianLatentHead,
    LocalSpatialPredictor,
)

LOSS_NAMES = ("loss", "vae_loss", "reconstruction_loss", "kl_loss", "lsp_loss", "pointnet_loss")
# The reference's single optimizer took one step per module loss and one more per batch.
REFERENCE_OPTIMIZER_STEPS_PER_BATCH = 4


def scale_frames(frames, image_size: int) -> tf.Tensor:
    """``ops.scale_frames`` (uint8 in [0, 255] or float in [0, 1] -> float32 in [0, 1])."""
    return ops.scale_frames(frames, image_size, "PermaKey")


def _frames_from_data(data):
    """fit()/train_on_batch() batches: plain frames, or a tuple whose first item is the frames."""
    while isinstance(data, (tuple, list)):
        data = data[0]
    if isinstance(data, dict):
        if "image" not in data:
            raise ValueError(f"Dict batches need an 'image' entry, got keys {sorted(data)}")
        data = data["image"]
    return data


@keras.saving.register_keras_serializable(package="permakey_tf")
class PermaKey(ModuleOptimizers, KeypointModel):
    """PermaKey: VAE + one local spatial prediction network per layer + PointNet.

    Args:
      config: a :class:`PermaKeyConfig` (or its dict); None = the paper's configuration.

    Call:
      ``frames`` uint8 ``[B, S, S, 3]`` (or float in [0, 1]) -> dict with
      ``keypoints`` [B,K,2] (y, x) in [-1, 1]; ``keypoints_pixels`` [B,K,2] (x, y) pixels;
      ``heatmaps`` [B,h,w,K] logits; ``gaussian_maps`` [B,S,S,K]; ``error_maps`` [B,S,S,L] in
      [0, 1]; ``reconstruction`` [B,S,S,3] in [0, 1] (omitted with ``with_reconstruction=False``,
      which skips the latent head and decoder). ``keypoints``, ``keypoints_pixels`` and
      ``gaussian_maps`` are the PointNet's keypoints after ``keypoint_refinement_steps`` mean-shift
      steps on the error maps; ``heatmaps`` are the PointNet's own, so a heatmap's soft-argmax and
      its refined keypoint can differ by a few pixels.
    """

    config_class = PermaKeyConfig
    optimized_modules = ("vae", "lsp", "pointnet")

    def __init__(self, config: PermaKeyConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config = self.resolve_config(config)
        c = config
        self.encoder = ConvStack(c.encoder_kernels, c.encoder_filters, c.encoder_strides, name="encoder")
        # The latent head runs in float32 under mixed precision (cheap; keeps the scale precise).
        self.latent_head = GaussianLatentHead(
            c.latent_dim, min_scale=c.latent_min_scale, dtype="float32", name="latent_head"
        )
        self.decoder = Decoder(
            c.image_size,
            c.encoder_kernels,
            c.encoder_filters,
            c.encoder_strides,
            upsampling=c.decoder_upsampling,
            name="decoder",
        )
        self.lspns = [
            LocalSpatialPredictor(
                c.patch_size, c.lsp_hidden_widths, c.odd_size_rule,
                name=f"lspn_layer{layer}",
            )
            for layer in c.lsp_layers
        ]
        self.pointnet = build_pointnet(c)
        self.sampling_seed = keras.random.SeedGenerator(name="sampling_seed")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        self.vae_optimizer = self.lsp_optimizer = self.pointnet_optimizer = None
        self.build((None, c.image_size, c.image_size, 3))

    # ------------------------------------------------------------------ building / config
    def build(self, input_shape):
        if self.built:
            return
        size = self.config.image_size
        frames_shape = (None, size, size, 3)
        self.encoder.build(frames_shape)
        feature_shapes = self.encoder.compute_output_shape(frames_shape)
        self.latent_head.build(feature_shapes[-1])
        self.decoder.build((None, self.config.latent_dim))
        for layer, lspn in zip(self.config.lsp_layers, self.lspns):
            lspn.build(feature_shapes[layer])
        self.pointnet.build((None, size, size, len(self.lspns)))
        self.built = True

    # Keras does not save SeedGenerator states; keep the VAE's sampling stream in the file so a
    # reloaded model continues training exactly as the original would.
    _SEED_KEY = "sampling_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = self.sampling_seed.state

    def load_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        for i, variable in enumerate(own):
            variable.assign(store[f"{i}"])
        if self._SEED_KEY in store:
            self.sampling_seed.state.assign(store[self._SEED_KEY])

    def module_variables(self) -> dict[str, list]:
        """Trainable variables per module: {"vae": [...], "lsp": [...], "pointnet": [...]}."""
        vae = (
            self.encoder.trainable_variables
            + self.latent_head.trainable_variables
            + self.decoder.trainable_variables
        )
        lsp = [v for lspn in self.lspns for v in lspn.trainable_variables]
        return {"vae": vae, "lsp": lsp, "pointnet": self.pointnet.trainable_variables}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameter count per module (encoder+latent head+decoder, LSPNs, PointNet)."""
        return {
            name: int(sum(v.numpy().size for v in variables))
            for name, variables in self.module_variables().items()
        }

    # ------------------------------------------------------------------ compile / optimizers
    def default_optimizer(self, name: str) -> keras.optimizers.Optimizer:
        """Adam with the configured schedule (paper: x0.85 every 10,000 steps, staircase)."""
        c = self.config
        # The reference's one optimizer steps several times per batch: its decay counts those steps.
        decay_steps = c.lr_decay_steps / (REFERENCE_OPTIMIZER_STEPS_PER_BATCH if c.lr_schedule == "reference" else 1)
        return adam_with_schedule(c.learning_rate, decay_steps, c.lr_decay_rate, c.lr_schedule, name=name)

    def compile(self, vae_optimizer=None, lsp_optimizer=None, pointnet_optimizer=None, **kwargs):
        """Sets the three module optimizers (None = :meth:`default_optimizer`) and Keras options
        (``module_optimizers.ModuleOptimizers.compile``)."""
        super().compile(vae_optimizer=vae_optimizer, lsp_optimizer=lsp_optimizer,
                        pointnet_optimizer=pointnet_optimizer, **kwargs)

    # ------------------------------------------------------------------ forward pass
    def _error_maps(self, predictions, targets, feature_shapes):
        """Per-layer cell errors -> normalised [B, S, S, L] maps (float32, no gradient)."""
        c = self.config
        size = c.image_size
        maps = []
        for prediction, target, shape in zip(predictions, targets, feature_shapes):
            prediction = tf.cast(tf.stop_gradient(prediction), tf.float32)
            target = tf.cast(tf.stop_gradient(target), tf.float32)
            error = tf.reduce_mean(tf.square(prediction - target), axis=-1, keepdims=True)
            if c.error_map_mode == "rmse":
                error = tf.sqrt(error)
            activation = tf.reduce_mean(target, axis=-1, keepdims=True)
            error = error / (activation + c.error_map_denominator_epsilon)
            layer_map = cell_grid.cells_to_map(error, c.patch_size, shape[1], shape[2])
            maps.append(tf.image.resize(layer_map, [size, size], method="nearest"))
        return ops.normalize_maps(tf.concat(maps, axis=-1), c.normalize_epsilon)

    def _standard_normal(self, shape):
        """N(0, 1) noise from the model's seed stream, identical under XLA and graph mode
        (ops.hashed_normal; TensorFlow's stateless RNG kernels differ between the two)."""
        return ops.hashed_normal(shape, self.sampling_seed.next())

    def _forward(self, x, training: bool, with_reconstruction: bool = True, sample=None):
        """x float32 [B,S,S,3] in [0,1] -> dict of outputs plus the tensors the losses need.
        ``sample`` (default: ``training``) draws the VAE latent; otherwise its mean is decoded."""
        c = self.config
        batch_statistics = (not training) and c.inference_batch_statistics
        features = self.encoder(x, training=training, batch_statistics=batch_statistics)
        outputs = {}
        if with_reconstruction:
            mean, scale = self.latent_head(features[-1])
            if training if sample is None else sample:
                noise = self._standard_normal(tf.shape(mean))
                latent = mean + scale * noise
            else:
                latent = mean
            outputs["reconstruction"] = tf.cast(self.decoder(latent, training=training), tf.float32)
            outputs["latent_mean"], outputs["latent_scale"] = mean, scale
        predictions, targets, shapes = [], [], []
        for layer, lspn in zip(c.lsp_layers, self.lspns):
            feature = tf.stop_gradient(features[layer])
            if predictions and not training:
                # Inference: one LSPN after the other. Run side by side, their large
                # convolutions compete for the same cores (5% slower per batch on 2 cores,
                # docs/PERFORMANCE.md); training gains a little from the overlap, so keeps it.
                with tf.control_dependencies([predictions[-1]]):
                    feature = tf.identity(feature)
            prediction, target = lspn(feature, training=training, batch_statistics=batch_statistics)
            predictions.append(prediction)
            targets.append(target)
            shapes.append(feature.shape)
        outputs["lsp_predictions"], outputs["lsp_targets"] = predictions, targets
        error_maps = tf.stop_gradient(self._error_maps(predictions, targets, shapes))
        outputs["error_maps"] = error_maps
        outputs.update(keypoint_outputs(self.pointnet, c, error_maps, training, batch_statistics))
        return outputs

    def compute_losses(self, x, outputs) -> dict[str, tf.Tensor]:
        """float32 scalar losses from the forward outputs (see the module docstring)."""
        c = self.config
        squared_error = tf.square(x - outputs["reconstruction"])
        reconstruction = 0.5 * tf.reduce_mean(squared_error) / c.vae_likelihood_variance
        mean, scale = outputs["latent_mean"], outputs["latent_scale"]
        kl_per_dim = 0.5 * (tf.square(scale) + tf.square(mean) - 1.0) - tf.math.log(scale)
        kl = tf.reduce_mean(tf.reduce_sum(kl_per_dim, axis=-1))
        vae = reconstruction + c.kl_weight * kl
        lsp = tf.add_n(
            [
                tf.reduce_mean(tf.square(tf.cast(p, tf.float32) - tf.cast(t, tf.float32)))
                for p, t in zip(outputs["lsp_predictions"], outputs["lsp_targets"])
            ]
        )
        pointnet = pointnet_loss(outputs, outputs["error_maps"], c)
        return {
            "loss": vae + lsp + pointnet,
            "vae_loss": vae,
            "reconstruction_loss": reconstruction,
            "kl_loss": kl,
            "lsp_loss": lsp,
            "pointnet_loss": pointnet,
        }

    def call(self, frames, training=False, with_reconstruction=True):
        x = scale_frames(frames, self.config.image_size)
        if x.shape[0] == 0:  # an empty batch: empty outputs of the right shapes
            return ops.empty_like_outputs(
                lambda one: self.call(one, training=False, with_reconstruction=with_reconstruction),
                self.config.image_size)
        outputs = self._forward(x, training=bool(training), with_reconstruction=with_reconstruction)
        if self.config.keypoint_refinement_steps:
            outputs.update(self.refined_keypoints(outputs["keypoints"], outputs["error_maps"]))
        names = ["keypoints", "keypoints_pixels", "heatmaps", "gaussian_maps", "error_maps"]
        if with_reconstruction:
            names.append("reconstruction")
        return {name: outputs[name] for name in names}

    def refined_keypoints(self, keypoints, error_maps) -> dict:
        """The PointNet's keypoints ``[B, K, 2]`` moved by ``keypoint_refinement_steps`` mean-shift
        steps on ``error_maps`` ``[B, S, S, L]`` (ops.mean_shift_keypoints): ``keypoints``,
        ``keypoints_pixels`` and ``gaussian_maps`` as :func:`keypoint_outputs` gives them."""
        c = self.config
        moved = ops.mean_shift_keypoints(keypoints, error_maps, c.keypoint_sigma,
                                         c.keypoint_refinement_steps)
        return dict(keypoints=moved, keypoints_pixels=ops.keypoints_to_pixels(moved, c.image_size),
                    gaussian_maps=ops.keypoints_to_gaussian_maps(moved, c.image_size, c.image_size,
                                                                 c.keypoint_sigma))

    def recompute_batch_norm_statistics(self, frames, max_batches: int = 64) -> int:
        """Sets every BatchNorm's inference statistics to the average batch statistics of the
        current weights over ``frames`` (an iterable of uint8 batches, e.g. a tf.data dataset of
        training frames; at most ``max_batches`` are used). Call it after ``fit`` when not
        training with train.py. Returns the number of batches averaged."""
        import itertools

        from permakey_tf.models.batch_norm import recompute_statistics

        return recompute_statistics(self, self.statistics_pass, itertools.islice(iter(frames), max_batches))

    def statistics_pass(self, frames) -> None:
        """The training-mode forward pass without the VAE's sampling and without any update but
        BatchNorm's statistics: what ``batch_norm.recompute_statistics`` averages over."""
        self._forward(scale_frames(frames, self.config.image_size), training=True, sample=False)

    def restart_pointnet(self, seed: int) -> None:
        """Fresh PointNet weights (drawn with ``seed``) and a zeroed PointNet optimizer state
        (moments and step count); the VAE and LSPNs are untouched. Draws through
        ``keras.utils.set_random_seed(seed)``, so the global Python / NumPy / TF generators are
        reseeded too (the model's own sampling state is not)."""
        keras.utils.set_random_seed(int(seed))
        fresh = build_pointnet(self.config, name="pointnet_restarted")
        fresh.build((None, self.config.image_size, self.config.image_size, len(self.lspns)))
        self.pointnet.set_weights(fresh.get_weights())
        if self.pointnet_optimizer is not None and self.pointnet_optimizer.built:
            for variable in self.pointnet_optimizer.variables:
                if not variable.path.endswith("/learning_rate"):  # a constant rate is a variable too
                    variable.assign(tf.zeros_like(variable))

    def restart_keypoint_network(self, seed: int) -> None:
        """The keypoint-model contract's restart: :meth:`restart_pointnet`."""
        self.restart_pointnet(seed)

    def predict_keypoints(self, frames):
        """Inference without the latent head and decoder: call() minus ``reconstruction``."""
        return self(frames, training=False, with_reconstruction=False)

    def window_feature_maps(self, frames) -> list:
        """The features a keypoint's Gaussian window covers, for state probes: the VAE encoder's
        blocks at the LSP layers (the features whose unpredictability the error maps measure),
        inference mode.

        Args:
          frames: uint8 ``[B, H, W, 3]``.

        Returns:
          one float32 ``[B, h_l, w_l, C_l]`` per layer of ``config.lsp_layers``.
        """
        c = self.config
        x = scale_frames(frames, c.image_size)
        features = self.encoder(x, training=False, batch_statistics=c.inference_batch_statistics)
        return [tf.cast(features[layer], tf.float32) for layer in c.lsp_layers]

    # ------------------------------------------------------------------ train / test
    @property
    def metrics(self):
        return list(self.trackers.values())

    def _logs(self):
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        logs["learning_rate"] = tf.cast(self.vae_optimizer.learning_rate, tf.float32)
        return logs

    def train_step(self, data):
        if self.vae_optimizer is None:
            raise RuntimeError("Call PermaKey.compile() before training")
        x = scale_frames(_frames_from_data(data), self.config.image_size)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.module_variables()
        loss_names = {"vae": "vae_loss", "lsp": "lsp_loss", "pointnet": "pointnet_loss"}
        with tf.GradientTape() as vae_tape, tf.GradientTape() as lsp_tape, tf.GradientTape() as pn_tape:
            outputs = self._forward(x, training=True)
            losses = self.compute_losses(x, outputs)
            scaled = {
                module: self._module_optimizer(module).scale_loss(losses[loss_names[module]] / replicas)
                for module in self.optimized_modules
            }
        tapes = {"vae": vae_tape, "lsp": lsp_tape, "pointnet": pn_tape}
        for module in self.optimized_modules:
            gradients = tapes[module].gradient(scaled[module], variables[module])
            self._module_optimizer(module).apply(gradients, variables[module])
        for name, tracker in self.trackers.items():
            tracker.update_state(losses[name])
        return self._logs()

    def test_step(self, data):
        x = scale_frames(_frames_from_data(data), self.config.image_size)
        losses = self.compute_losses(x, self._forward(x, training=False))
        for name, tracker in self.trackers.items():
            tracker.update_state(losses[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def predict_step(self, data):
        return self(_frames_from_data(data), training=False)
