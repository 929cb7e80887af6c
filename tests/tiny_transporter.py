"""A Transporter config on 16x16 frames with tiny widths and random frames for it, shared by the
Transporter tests (not a test module)."""

import numpy as np

from permakey_tf.config import TransporterConfig

# 16x16 frames, 8x8 features: every test but the learning one runs in about a second.
TINY = TransporterConfig(
    image_size=16,
    encoder_filters=(4, 4, 8, 8),
    decoder_filters=(8, 8, 8, 8),
    num_keypoints=2,
)


def transporter_frames(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
