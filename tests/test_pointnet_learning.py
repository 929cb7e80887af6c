"""The keypoint bottleneck alone must learn per-frame keypoints on error-map-like inputs.

Synthetic maps shaped like the error maps a trained PermaKey gives on Pong: two bright moving
blobs per frame (a 6x14 "paddle" and a 6x6 "ball", random positions), a static bright "score"
block at the top and a faint static frame around the border, on a dark background. A PointNet
trained on them alone with the project's loss must put a keypoint on both moving blobs in most
held-out frames; with the reference bottleneck (marginal softmax, zero padding, plain logits, the
loss on the frame only) it does not: its keypoints settle on the static parts.

Fraction of held-out frames with both blobs found (K = 6, 800 steps), seeds 0 / 1 / 2 / 3:
  * 2-core AMD EPYC (2026-12-02): defaults with sigma 0.05 0.98 / 0.77 / 0.86 / 1.00; defaults
    (sigma 0.1) 0.66 / 0.81 / 1.00 / 0.69; the reference bottleneck 0.13 / 0.11 (sigma 0.05),
    0.13 (sigma 0.1, seed 0).
  * 2-core Intel Xeon (2026-12-01): defaults (sigma 0.1) 0.94 / 1.00 / 1.00; reference 0.08 /
    0.05 / 0.16.
  * 2-core Intel Xeon with AMX (2026-12-02), defaults with sigma 0.05: 0.58 / 1.00 / 0.77 / 0.98
    before the row-view batch norm, 0.81 / 0.63 / 0.83 / 0.67 after it (the same mathematics,
    a different summation order in the batch statistics).
Which frames a given seed gets right depends on float rounding (machine, kernel), so the test
averages four seeds and uses sigma 0.05, the steadier setting here (and the best PointNet-alone
variant on a trained Pong model's maps, docs/RESULTS.md). Its threshold, 0.65, sits between the
working bottleneck's means (0.73-0.88) and the reference's (0.08-0.16); a target of 0.9 in every
run is not met reliably.
"""

import numpy as np
import tensorflow as tf

from permakey_tf.config import PermaKeyConfig
from permakey_tf.permakey import fit_pointnet, keypoint_outputs

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


def train_pointnet(config: PermaKeyConfig, steps: int = 800, batch_size: int = 16, seed: int = 0):
    """A fresh PointNet trained on synthetic maps; returns the held-out success fraction."""
    train_maps, _ = synthetic_error_maps(512, seed=seed + 1)
    test_maps, test_boxes = synthetic_error_maps(64, seed=seed + 2)
    pointnet = fit_pointnet(config, train_maps, steps, batch_size, learning_rate=2e-3, seed=seed)
    keypoints = keypoint_outputs(pointnet, config, tf.constant(test_maps), training=False,
                                 batch_statistics=True)["keypoints_pixels"].numpy()
    return fraction_of_frames_with_both_blobs_found(keypoints, test_boxes)


SMALL = dict(encoder_filters=(8, 16, 16, 16), num_keypoints=6, keypoint_sigma=0.05)
SEEDS = (0, 1, 2, 3)


def test_bottleneck_puts_keypoints_on_the_moving_blobs():
    found = [train_pointnet(PermaKeyConfig(**SMALL), seed=seed) for seed in SEEDS]
    assert np.mean(found) >= 0.65, found


def test_reference_bottleneck_misses_them():
    """The reference's marginal reduction with zero padding, same budget: the failure mode the
    defaults fix (kept so that the learning test is seen to fail on the broken version)."""
    config = PermaKeyConfig(**SMALL, keypoint_reduction="marginal", keypoint_padding="zero",
                            heatmap_temperature=1.0, pointnet_loss_extent="frame")
    found = [train_pointnet(config, seed=seed) for seed in SEEDS[:2]]
    assert np.mean(found) < 0.4, found
