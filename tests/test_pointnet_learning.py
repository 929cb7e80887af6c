"""The keypoint bottleneck alone must learn per-frame keypoints on error-map-like inputs.

Synthetic maps shaped like the error maps a trained PermaKey gives on Pong: two bright moving
blobs per frame (a 6x14 "paddle" and a 6x6 "ball", random positions), a static bright "score"
block at the top and a faint static frame around the border, on a dark background. A PointNet
trained on them alone with the project's loss must put a keypoint on both moving blobs in most
held-out frames; with the reference bottleneck (marginal softmax, zero padding, plain logits, the
loss on the frame only) it does not: its keypoints settle on the static parts.

The bottleneck's design decides most of it before training: an untrained PointNet with the
defaults already finds both blobs in about 0.6 of the frames (its spatial softmax follows the
brightest input), the reference's in 0.0-0.02. Training must raise that, not lose it to the static
parts. Fraction of held-out frames with both blobs found (K = 6, sigma 0.05), 2-core AMD EPYC
with AVX2 only (2026-12-03), untrained -> 200 steps -> 800 steps:
  * defaults, seeds 0-3: 0.48 / 0.81 / 0.67 / 0.52 (mean 0.62) -> 0.75 / 0.53 / 0.91 / 0.70
    (mean 0.72) -> 0.84 / 0.33 / 1.00 / 0.77 (mean 0.74; 0.62 at 400 steps: the per-seed curves
    wander by up to 0.4 between checkpoints); seeds 4-7: mean 0.55 -> 0.71.
  * reference, seeds 0-3: 0.02 / 0.02 / 0.02 / 0.00 -> 0.05 / 0.11 / 0.11 / 0.13 (0.06-0.19
    up to 400 steps).
Earlier machines at 800 steps: 2-core Intel Xeon (2026-12-01, sigma 0.1) 0.94 / 1.00 / 1.00,
reference 0.08 / 0.05 / 0.16; Xeon with AMX (2026-12-02) 0.81 / 0.63 / 0.83 / 0.67, mean 0.74.
Which frames a given seed gets right depends on float rounding (machine, kernel), so the test
averages four seeds, at sigma 0.05 (the steadier setting here, and the best PointNet-alone
variant on a trained Pong model's maps, docs/notes/one-seed-results.md). It trains 200 steps (800 before
2026-12-03: the same means at a quarter of the time) and asserts a mean >= 0.65 and above the
same networks untrained; the reference bottleneck, same budget, stays below 0.4. A target of 0.9 in every run is not met reliably.
"""

import numpy as np
import tensorflow as tf

from permakey_tf.config import PermaKeyConfig
from permakey_tf.models.pointnet import fit_pointnet, keypoint_outputs

SIZE = 84
BLOBS = ((6, 14), (6, 6))  # (width, height) of the moving blobs, pixels


def synthetic_error_maps(num_frames: int, seed: int):
    """``[N, 84, 84, 1]`` float32 maps in [0, 1] and the moving blobs' boxes ``[N, 2, 4]``
    (x0, y0, x1, y1), pixels."""
    rng = np.random.default_rng(seed)
    maps = np.zeros((num_frames, SIZE, SIZE, 1), np.float32)
    maps[:, 1, 1:-1] = maps[:, -2, 1:-1] = maps[:, 1:-1, 1] = maps[:, 1:-1, -2] = 0.15  # frame
    maps[:, 3:11, 16:26] = 0.8  # the score
    boxes = np.zeros((num_frames, len(BLOBS), 4))
    for i in range(num_frames):
        for j, (w, h) in enumerate(BLOBS):
            x0, y0 = rng.integers(8, SIZE - 8 - w), rng.integers(16, SIZE - 8 - h)
            maps[i, y0:y0 + h, x0:x0 + w] = 1.0
            boxes[i, j] = (x0, y0, x0 + w, y0 + h)
    return maps, boxes


def fraction_of_frames_with_both_blobs_found(keypoints, boxes, tolerance=2.0):
    """Frames in which every moving blob has a keypoint inside its box grown by ``tolerance``."""
    x = keypoints[:, :, None, 0]
    y = keypoints[:, :, None, 1]
    b = boxes[:, None]
    inside = ((x >= b[..., 0] - tolerance) & (x <= b[..., 2] + tolerance)
              & (y >= b[..., 1] - tolerance) & (y <= b[..., 3] + tolerance))  # [N, K, blobs]
    return float(inside.any(1).all(1).mean())


def train_pointnet(config: PermaKeyConfig, steps: int = 200, batch_size: int = 16, seed: int = 0):
    """A fresh PointNet trained ``steps`` updates on synthetic maps (0: the untrained network of
    the same seed); returns the held-out success fraction."""
    train_maps, _ = synthetic_error_maps(512, seed=seed + 1)
    test_maps, test_boxes = synthetic_error_maps(64, seed=seed + 2)
    pointnet = fit_pointnet(config, train_maps, steps, batch_size, learning_rate=2e-3, seed=seed)
    keypoints = keypoint_outputs(pointnet, config, tf.constant(test_maps), training=False,
                                 batch_statistics=True)["keypoints_pixels"].numpy()
    return fraction_of_frames_with_both_blobs_found(keypoints, test_boxes)


SMALL = dict(encoder_filters=(8, 16, 16, 16), num_keypoints=6, keypoint_sigma=0.05)
SEEDS = (0, 1, 2, 3)


def test_bottleneck_puts_keypoints_on_the_moving_blobs():
    config = PermaKeyConfig(**SMALL)
    untrained = [train_pointnet(config, steps=0, seed=seed) for seed in SEEDS]
    found = [train_pointnet(config, seed=seed) for seed in SEEDS]
    assert np.mean(found) >= 0.65, found
    assert np.mean(found) > np.mean(untrained), (found, untrained)


def test_reference_bottleneck_misses_them():
    """The reference's marginal reduction with zero padding, same budget: the failure mode the
    defaults fix (kept so that the learning test is seen to fail on the broken version)."""
    config = PermaKeyConfig(**SMALL, keypoint_reduction="marginal", keypoint_padding="zero",
                            heatmap_temperature=1.0, pointnet_loss_extent="frame")
    found = [train_pointnet(config, seed=seed) for seed in SEEDS[:2]]
    assert np.mean(found) < 0.4, found
