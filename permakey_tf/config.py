"""Configuration dataclasses with the paper's defaults (REFERENCE.md sections 2-5).

Where the authors' code differs from the paper, a field selects the behaviour; the default is the
paper's, and the docstring says what the reference code does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from tfds_atari.games import get_game


def _tuplify(value: Any) -> Any:
    """Lists (from JSON) back to tuples, recursively."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


class ConfigMixin:
    """to_dict / from_dict for JSON round trips (lists become tuples, unknown keys are errors)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} fields {unknown}; valid fields: {sorted(names)}")
        return cls(**{k: _tuplify(v) for k, v in values.items()})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class PermaKeyConfig(ConfigMixin):
    """PermaKey's hyperparameters; defaults are the paper's configuration.

    Attributes:
      image_size: frames are image_size x image_size x 3 (84).
      encoder_kernels / encoder_filters / encoder_strides: the VAE encoder's Conv-BN-ReLU stack;
        the PointNet uses the same stack with its own weights.
      latent_dim: VAE latent size (32).
      decoder_upsampling: "bilinear" (paper) or "nearest" (reference code).
      vae_likelihood_variance: fixed variance of the Gaussian likelihood (0.1, reference).
      kl_weight: weight of the KL term summed over latent dims; with the per-pixel *mean*
        reconstruction error this is ~21,000x a standard ELBO's KL weight (reference behaviour).
      lsp_layers: encoder layers (0 = first) that get a Local Spatial Prediction Network.
      patch_size: p, the side of a predicted cell (2).
      lsp_hidden_widths: hidden widths of each LSPN MLP; None = (8 p^2 C, 512, 256) with C the
        layer's channel count (1024/512/256 for layer 0, 2048/512/256 for layer 1).
      odd_size_rule: "pad" (zero-pad odd feature maps to a multiple of p; default) or "crop"
        (drop the last row/column like the reference; 21x21 -> 10x10 cells).
      error_map_mode: "rmse" (reference code until mid-2021, the paper's era) or "mse" (later).
      error_map_denominator_epsilon: the 1e-3 in error / (mean centre activation + eps).
      normalize_epsilon: guards the per-image min-max normalisation of error maps (the reference
        has none and gives NaN on a constant map).
      num_keypoints: K.
      pointnet_second_stride: 1 (paper-era code, 42x42 heatmaps) or 2 (later code, 21x21).
      keypoint_sigma: Gaussian width in [-1, 1] units (0.1 paper, 0.12 later code).
      learning_rate: Adam's initial learning rate for all three modules (2e-4).
      lr_schedule: "paper" (x lr_decay_rate every lr_decay_steps, staircase) or "reference"
        (InverseTimeDecay as the authors' code; their shared optimizer stepped 4x per batch).
      lr_decay_rate / lr_decay_steps: 0.85 every 10,000 steps.
    """

    image_size: int = 84
    encoder_kernels: tuple[int, ...] = (4, 3, 3, 3)
    encoder_filters: tuple[int, ...] = (32, 64, 64, 128)
    encoder_strides: tuple[int, ...] = (1, 2, 2, 1)
    latent_dim: int = 32
    decoder_upsampling: str = "bilinear"
    vae_likelihood_variance: float = 0.1
    kl_weight: float = 1.0
    lsp_layers: tuple[int, ...] = (0, 1)
    patch_size: int = 2
    lsp_hidden_widths: Optional[tuple[int, ...]] = None
    odd_size_rule: str = "pad"
    error_map_mode: str = "rmse"
    error_map_denominator_epsilon: float = 1e-3
    normalize_epsilon: float = 1e-6
    num_keypoints: int = 8
    pointnet_second_stride: int = 1
    keypoint_sigma: float = 0.1
    learning_rate: float = 2e-4
    lr_schedule: str = "paper"
    lr_decay_rate: float = 0.85
    lr_decay_steps: int = 10_000

    def __post_init__(self):
        n = len(self.encoder_filters)
        if not (len(self.encoder_kernels) == len(self.encoder_strides) == n):
            raise ValueError("encoder_kernels, encoder_filters and encoder_strides need equal lengths")
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {self.num_keypoints}")
        if not self.lsp_layers:
            raise ValueError("lsp_layers needs at least one encoder layer")
        bad = [i for i in self.lsp_layers if not 0 <= i < n]
        if bad:
            raise ValueError(
                f"lsp_layers {bad} do not exist: the encoder has {n} layers (indices 0..{n - 1})"
            )

    @classmethod
    def for_game(cls, game: str, **changes) -> "PermaKeyConfig":
        """The paper's configuration with the authors' K for ``game``."""
        changes.setdefault("num_keypoints", get_game(game).num_keypoints)
        return cls(**changes)


@dataclasses.dataclass(frozen=True)
class TransporterConfig(ConfigMixin):
    """Transporter's hyperparameters (REFERENCE.md section 5); see transporter.py for the
    deliberate differences from the authors' re-implementation and DeepMind's description."""

    image_size: int = 84
    encoder_kernels: tuple[int, ...] = (3, 3, 3, 3)
    encoder_filters: tuple[int, ...] = (16, 16, 32, 32)
    encoder_strides: tuple[int, ...] = (1, 1, 2, 1)
    num_keypoints: int = 8
    keypoint_sigma: float = 0.1
    learning_rate: float = 2e-4
    lr_decay_rate: float = 0.9
    lr_decay_steps: int = 30_000

    def __post_init__(self):
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {self.num_keypoints}")

    @classmethod
    def for_game(cls, game: str, **changes) -> "TransporterConfig":
        changes.setdefault("num_keypoints", get_game(game).num_keypoints)
        return cls(**changes)
