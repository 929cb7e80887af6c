"""PermaKey's PointNet: its construction, its objective and its updates on error maps.

The PointNet reads the (stop-gradient) error maps ``[B, S, S, L]`` and places K keypoints; its
loss compares the sum of their Gaussian maps with the error maps (``pointnet_frame_losses``, the
one definition that training, the final PointNet phase and every diagnostic call). Nothing here
knows the VAE or the LSPNs: a PointNet can be fitted on fixed maps alone (``fit_pointnet``).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from permakey_tf.config import PermaKeyConfig
from permakey_tf.models import ops
from permakey_tf.models.keypoint_model import KeypointNet, keypoint_head


def build_pointnet(config: PermaKeyConfig, name: str = "pointnet") -> KeypointNet:
    """PermaKey's PointNet: the encoder's Conv-BN-ReLU stack (own weights; its second stride
    ``pointnet_second_stride``) over the error maps, then K heatmaps (``keypoint_head``)."""
    c = config
    strides = list(c.encoder_strides)
    if len(strides) > 1:
        strides[1] = c.pointnet_second_stride
    return keypoint_head(c, c.encoder_kernels, c.encoder_filters, strides, c.pointnet_norm, name)


def keypoint_outputs(pointnet: KeypointNet, config: PermaKeyConfig, error_maps, training: bool,
                     batch_statistics: bool = False) -> dict:
    """error maps ``[B, S, S, L]`` -> ``heatmaps`` ``[B, h, w, K]``, ``keypoints`` ``[B, K, 2]``
    (y, x) in [-1, 1], ``keypoints_pixels`` (x, y) and ``gaussian_maps`` ``[B, S, S, K]``."""
    c = config
    heatmaps = pointnet(error_maps, training=training, batch_statistics=batch_statistics)
    keypoints = ops.heatmaps_to_keypoints(heatmaps, c.keypoint_reduction)
    return dict(
        heatmaps=heatmaps,
        keypoints=keypoints,
        keypoints_pixels=ops.keypoints_to_pixels(keypoints, c.image_size),
        gaussian_maps=ops.keypoints_to_gaussian_maps(
            keypoints, c.image_size, c.image_size, c.keypoint_sigma
        ),
    )


def pointnet_loss(outputs: dict, error_maps, config: PermaKeyConfig) -> tf.Tensor:
    """The PointNet's training loss: the batch mean of :func:`pointnet_frame_losses`."""
    return tf.reduce_mean(pointnet_frame_losses(outputs, error_maps, config))


def pointnet_frame_losses(outputs: dict, error_maps, config: PermaKeyConfig) -> tf.Tensor:
    """``mean((sum_k gaussian_k - error_map_l)^2)`` over pixels and layers l, per frame. The one
    definition of the PointNet's objective:
    training and the diagnostics (:func:`pointnet_frame_losses_of_pixels`) both call it.

    With ``pointnet_loss_extent="padded"`` the sum also runs over a band of
    :func:`loss_margin` pixels around the frame where the error maps count as 0 (divided by the
    frame's pixel count all the same), so the part of a Gaussian beyond the edge costs what it
    would inside: a keypoint gains nothing by leaning out of the frame.

    Args:
      outputs: :func:`keypoint_outputs` (``gaussian_maps``, ``keypoints``).
      error_maps: ``[B, S, S, L]``.

    Returns:
      ``[B]`` float32.
    """
    return _fine_loss(outputs, error_maps, config)


def pointnet_frame_losses_of_pixels(keypoints_pixels, error_maps, config: PermaKeyConfig,
                                    chunk: int = 64):
    """:func:`pointnet_frame_losses` for keypoints given as pixels (numpy in, numpy out), in chunks.

    Args:
      keypoints_pixels: ``[N, K, 2]`` (x, y) continuous pixel coordinates.
      error_maps: ``[N, S, S, L]`` in [0, 1].

    Returns:
      ``[N]`` float64.
    """
    import numpy as np

    size = config.image_size
    losses = []
    for start in range(0, len(error_maps), chunk):
        keypoints = ops.pixels_to_keypoints(tf.constant(keypoints_pixels[start:start + chunk], tf.float32), size)
        outputs = {"keypoints": keypoints,
                   "gaussian_maps": ops.keypoints_to_gaussian_maps(keypoints, size, size, config.keypoint_sigma)}
        maps = tf.constant(np.asarray(error_maps[start:start + chunk], np.float32))
        losses.append(pointnet_frame_losses(outputs, maps, config).numpy())
    return np.concatenate(losses).astype(np.float64) if losses else np.zeros(0)


def _fine_loss(outputs: dict, error_maps, config: PermaKeyConfig) -> tf.Tensor:
    margin = loss_margin(config)
    if margin == 0:
        rendered = tf.reduce_sum(outputs["gaussian_maps"], axis=-1, keepdims=True)
        return tf.reduce_mean(tf.square(rendered - error_maps), axis=[1, 2, 3])
    size = config.image_size
    gaussians = ops.keypoints_to_gaussian_maps(outputs["keypoints"], size, size, config.keypoint_sigma,
                                               margin=margin)
    rendered = tf.reduce_sum(gaussians, axis=-1, keepdims=True)
    padded = tf.pad(error_maps, [[0, 0], [margin, margin], [margin, margin], [0, 0]])
    squared = tf.reduce_sum(tf.square(rendered - padded), axis=[1, 2])  # [B, L]
    return tf.reduce_mean(squared, axis=-1) / float(size * size)


def pointnet_update(pointnet: KeypointNet, config: PermaKeyConfig, optimizer, error_maps,
                    replicas: int = 1) -> tf.Tensor:
    """One optimizer step of the PointNet alone on (stop-gradient) error maps; returns the loss."""
    variables = pointnet.trainable_variables
    with tf.GradientTape() as tape:
        outputs = keypoint_outputs(pointnet, config, error_maps, training=True)
        loss = pointnet_loss(outputs, error_maps, config)
        scaled = optimizer.scale_loss(loss / replicas)
    optimizer.apply(tape.gradient(scaled, variables), variables)
    return loss


def fit_pointnet(config: PermaKeyConfig, maps, steps: int, batch_size: int = 32,
                 learning_rate: float = 1e-3, seed: int = 0, sigma_start: float = 0.0) -> KeypointNet:
    """A fresh PointNet trained on fixed error maps ``[N, S, S, L]`` alone (random batches, Adam):
    the keypoint bottleneck without the networks that make the maps (tests, experiments/).

    With ``sigma_start > 0`` the Gaussians of the loss start wider and shrink to the config's
    ``keypoint_sigma`` (:func:`sigma_schedule`); the returned PointNet is that of the config."""
    import numpy as np

    keras.utils.set_random_seed(seed)
    pointnet = build_pointnet(config)
    pointnet.build((None,) + tuple(maps.shape[1:]))
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(pointnet.trainable_variables)
    rng = np.random.default_rng(seed)
    for sigma, stage_steps in sigma_schedule(config.keypoint_sigma, sigma_start, steps):
        stage_config = config.replace(keypoint_sigma=sigma)

        @tf.function
        def step(batch, stage_config=stage_config):
            return pointnet_update(pointnet, stage_config, optimizer, batch)

        for _ in range(stage_steps):
            step(tf.constant(maps[rng.integers(0, len(maps), batch_size)], tf.float32))
    return pointnet


# Stages of sigma_schedule's shrinking half.
SIGMA_STAGES = 4


def sigma_schedule(sigma: float, sigma_start: float, steps: int) -> list[tuple[float, int]]:
    """``[(sigma, steps), ...]`` of a PointNet fit: ``[(sigma, steps)]`` when ``sigma_start`` is
    0 (or not above ``sigma``); else the first half of the steps in :data:`SIGMA_STAGES` equal
    stages whose sigma falls geometrically from ``sigma_start`` towards ``sigma``, and the rest at
    ``sigma``. Wide Gaussians first let every keypoint feel every blob of error before the
    keypoints settle on single objects (deterministic annealing, as for k-means' restarts)."""
    if sigma_start < 0:
        raise ValueError(f"sigma_start must be >= 0 (0 = no annealing), got {sigma_start}")
    if sigma_start <= sigma or steps < 2 * SIGMA_STAGES:
        return [(sigma, steps)]
    stage = steps // (2 * SIGMA_STAGES)
    ratio = sigma / sigma_start
    stages = [(sigma_start * ratio ** (i / SIGMA_STAGES), stage) for i in range(SIGMA_STAGES)]
    return stages + [(sigma, steps - stage * SIGMA_STAGES)]


def loss_margin(config: PermaKeyConfig) -> int:
    """Pixels beyond the frame the PointNet loss covers: 0 for ``pointnet_loss_extent="frame"``,
    else 3 sigma (where a Gaussian has fallen to e^-9)."""
    if config.pointnet_loss_extent == "frame":
        return 0
    return int(math.ceil(3.0 * config.keypoint_sigma * (config.image_size - 1) / 2.0))
