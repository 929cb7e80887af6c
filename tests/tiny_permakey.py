"""A PermaKey of the paper's structure with tiny widths and random frames for it, shared by the
PermaKey tests (not a test module)."""

import keras
import numpy as np

from permakey_tf.config import PermaKeyConfig
from permakey_tf.models.permakey import PermaKey

# Paper structure (84x84, kernels/strides, layers (0, 1), p = 2) with tiny widths.
TINY = PermaKeyConfig(
    encoder_filters=(4, 8, 8, 8), latent_dim=4, lsp_hidden_widths=(16, 8), num_keypoints=3
)
LOSSES = ("loss", "vae_loss", "reconstruction_loss", "kl_loss", "lsp_loss", "pointnet_loss")


def permakey_frames(batch=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(batch, 84, 84, 3), dtype=np.uint8)


def permakey_model(config=TINY, seed=0):
    keras.utils.set_random_seed(seed)
    return PermaKey(config)
