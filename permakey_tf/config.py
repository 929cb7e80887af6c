"""Configuration dataclasses with the paper's defaults (docs/BACKGROUND.md sections 2-5).

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


# Fields of finished experiments, removed from the configs, with the value the code now always
# has. A saved config (config.json, a checkpoint) that holds one is read when it holds that value
# and refused otherwise (what each experiment found: docs/notes/one-seed-results.md).
RETIRED_FIELDS: dict[str, Any] = {
    "learn_heatmap_temperature": False,
    "keypoint_prior_steps": 0,
    "keypoint_prior_width": 0.25,
    "gaussian_combination": "sum",
    "pointnet_updates_per_step": 1,
    "lsp_border": "zero",
    "pointnet_coarse_weight": 0.0,
    "pointnet_coarse_blur": 0.2,
    "keypoint_refinement_background": "median",
}


class ConfigMixin:
    """to_dict / from_dict for JSON round trips (lists become tuples, unknown keys are errors,
    retired fields are read only at the value the code now has: :data:`RETIRED_FIELDS`)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {}
        for key, value in values.items():
            if key in RETIRED_FIELDS and key not in names:
                if _tuplify(value) != RETIRED_FIELDS[key]:
                    raise ValueError(
                        f"{cls.__name__}: {key}={value!r} was a finished experiment and is no longer "
                        f"supported (this version always uses {RETIRED_FIELDS[key]!r}; "
                        f"docs/notes/one-seed-results.md says what it found). Use an older version "
                        f"of permakey-tf to run or load this config.")
                continue
            kept[key] = value
        unknown = sorted(set(kept) - names)
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} fields {unknown}; valid fields: {sorted(names)}")
        return cls(**{k: _tuplify(v) for k, v in kept.items()})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


NORMS = ("batch", "layer", "instance")


def check_positive_sizes_and_rates(config) -> None:
    """Refuses settings that cannot train: a non-positive learning rate or decay period, a decay
    rate outside (0, 1] (paper schedule) or below 0 (reference schedule), and any layer width, latent size or kernel below 1 (ValueError naming
    the field and what it must be)."""
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate}")
    if config.lr_decay_steps < 1:
        raise ValueError(f"lr_decay_steps must be >= 1 (steps between decays), got {config.lr_decay_steps}")
    if config.lr_schedule == "paper" and not 0 < config.lr_decay_rate <= 1:
        raise ValueError(f"lr_decay_rate must be in (0, 1] for the paper's schedule (the factor per "
                         f"decay, 1 = no decay), got {config.lr_decay_rate}")
    if config.lr_schedule == "reference" and not config.lr_decay_rate >= 0:
        raise ValueError(f"lr_decay_rate must be >= 0 for the reference (inverse-time) schedule, "
                         f"got {config.lr_decay_rate}")
    for name in ("latent_dim",):
        if hasattr(config, name) and getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("encoder_filters", "encoder_kernels", "encoder_strides", "decoder_filters", "lsp_hidden_widths"):
        values = getattr(config, name, None) or ()
        if any(v < 1 for v in values):
            raise ValueError(f"every entry of {name} must be >= 1, got {tuple(values)}")
NOISE_MODES = ("none", "horizontal", "vertical", "both")  # Noisy-Atari bars (permakey_tf.data.noise)
KEYPOINT_REDUCTIONS = ("spatial", "marginal")
PADDING_MODES = ("zero", "reflect", "symmetric")
# What decides the final PointNet phase (permakey_tf.training.final_pointnet).
FINAL_PHASE_CRITERIA = ("loss_ratio", "moving_error_coverage")


@dataclasses.dataclass(frozen=True)
class KeypointHeadConfig:
    """The keypoint bottleneck, the same fields (and code) for PermaKey and Transporter.

    The papers are silent on the fields after keypoint_sigma; their defaults are what measured
    best in single-seed runs (docs/notes/one-seed-results.md, "The keypoint bottleneck"), the
    authors' behaviour is one switch away.

    Attributes:
      num_keypoints: K.
      keypoint_sigma: Gaussian width in [-1, 1] units, exp(-d^2 / sigma^2) (0.1 in both papers,
        0.12 in later PermaKey code).
      keypoint_reduction: how heatmap logits become coordinates: "spatial" (default: a softmax over
        all positions of the map, then the expected position) or "marginal" (the authors' and
        DeepMind's Transporter code: the logits averaged over rows / columns, a softmax per axis).
      keypoint_padding: border filling of the keypoint network's convolutions: "reflect" (default)
        or "symmetric" (mirrored), or "zero" (Keras' "same", both reference codes).
      heatmap_temperature: the heatmap logits are divided by it before the softmax (default 0.2;
        1.0 = the reference's plain logits, whose softmax over a 42x42 map starts out nearly
        uniform, so every keypoint starts at the centre with almost no gradient).
    """

    num_keypoints: int = 8
    keypoint_sigma: float = 0.1
    keypoint_reduction: str = "spatial"
    keypoint_padding: str = "reflect"
    heatmap_temperature: float = 0.2

    def __post_init__(self):
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {self.num_keypoints}")
        if not self.keypoint_sigma > 0:
            raise ValueError(f"keypoint_sigma must be > 0, got {self.keypoint_sigma}")
        if not self.heatmap_temperature > 0:
            raise ValueError(f"heatmap_temperature must be > 0, got {self.heatmap_temperature}")
        for name, valid in (("keypoint_reduction", KEYPOINT_REDUCTIONS),
                            ("keypoint_padding", PADDING_MODES)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")

    @property
    def keypoint_network_restart_step(self) -> int:
        """The optimizer step at which the model's keypoint network gets fresh weights and
        optimizer state (train.py's ``RestartKeypointNetwork``); 0 = never."""
        return 0


@dataclasses.dataclass(frozen=True)
class PermaKeyConfig(KeypointHeadConfig, ConfigMixin):
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
      pointnet_second_stride: 1 (paper-era code, 42x42 heatmaps) or 2 (later code, 21x21).
      num_keypoints, keypoint_sigma, keypoint_reduction, keypoint_padding, heatmap_temperature:
        the keypoint bottleneck (:class:`KeypointHeadConfig`).
      pointnet_norm: normalisation in the PointNet: "batch" (paper), "layer" or "instance".
      pointnet_loss_extent: "padded" (default: the loss also covers a 3-sigma band around the
        frame, where the maps count as 0, so the part of a Gaussian beyond the edge is not free
        and keypoints gain nothing by leaning out of the frame; see models.pointnet.pointnet_loss) or
        "frame" (the paper: only the error maps' pixels).
      pointnet_restart_step: 0 (never; the paper) or the optimizer step at which the PointNet
        gets fresh weights and a fresh optimizer state (``PermaKey.restart_pointnet``, applied by
        train.py's ``RestartKeypointNetwork`` callback), so that it learns on the error maps of a trained
        VAE and LSPN instead of staying where it settled on the first, changing maps.
      pointnet_final_steps: 0 (none; the paper) or the number of Adam steps of a final PointNet
        phase after joint training: a fresh PointNet fitted alone on the kept checkpoint's error
        maps of the first ``pointnet_final_frames`` training frames, at
        ``pointnet_final_learning_rate``, with the run's batch size
        (``permakey_tf.training.final_pointnet``; train.py applies it).
      pointnet_final_sigma_start: 0 (the final phase fits at ``keypoint_sigma`` throughout) or a
        wider sigma at which the final phase's fit starts, shrinking to ``keypoint_sigma`` over
        its first half (``models.pointnet.sigma_schedule``).
      pointnet_final_criterion: what decides between the joint and the refitted PointNet on the
        held-out frames, neither using labels: ``"loss_ratio"`` (the default; the lower PointNet
        loss over its own fixed layout's) or ``"moving_error_coverage"`` (the larger gain of
        ``scoring.diagnostics.moving_error_coverage`` over its own fixed layout: how much more of
        the error that moves lies under the keypoints).
      keypoint_refinement_steps: mean-shift steps on the error maps applied to the PointNet's
        keypoints in the model's outputs (``ops.mean_shift_keypoints``: each keypoint moves to
        the centre of error mass under its own Gaussian window). Default 2, what measured best
        (docs/notes/one-seed-results.md, "Refining the keypoints on the error maps"); 0 = the PointNet's
        soft-argmax keypoints as they are (the paper, which has no refinement). The PointNet's
        loss and training always use its own keypoints; refinement only changes what the model
        outputs (call, SavedModel, evaluation, probes).
      learning_rate: Adam's initial learning rate for all three modules (2e-4).
      lr_schedule: "paper" (x lr_decay_rate every lr_decay_steps, staircase) or "reference"
        (InverseTimeDecay as the authors' code; their shared optimizer stepped 4x per batch).
      lr_decay_rate / lr_decay_steps: 0.85 every 10,000 steps.
      inference_batch_statistics: at inference (call(training=False), test_step, predict) the
        encoder, the LSPNs and the PointNet normalise with the batch's own statistics instead of
        BatchNorm's moving averages (which are left untouched). False (default): the moving
        statistics, which train.py recomputes from the current weights before every validation
        ("precise BatchNorm", :meth:`PermaKey.recompute_batch_norm_statistics`), so a frame gets
        the same outputs alone or in any batch. True scores frames with their batch's
        statistics, as training computes them (a research switch; outputs then depend on the
        batch).
      latent_min_scale: floor added to the VAE's softplus scale (keeps log(scale) finite).
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
    pointnet_second_stride: int = 1
    pointnet_norm: str = "batch"
    pointnet_loss_extent: str = "padded"
    pointnet_restart_step: int = 0
    pointnet_final_steps: int = 0
    pointnet_final_learning_rate: float = 1e-3
    pointnet_final_frames: int = 3008
    pointnet_final_sigma_start: float = 0.0
    pointnet_final_criterion: str = "loss_ratio"
    keypoint_refinement_steps: int = 2
    learning_rate: float = 2e-4
    lr_schedule: str = "paper"
    lr_decay_rate: float = 0.85
    lr_decay_steps: int = 10_000
    inference_batch_statistics: bool = False
    latent_min_scale: float = 1e-4

    def __post_init__(self):
        choices = {
            "decoder_upsampling": ("bilinear", "nearest"),
            "odd_size_rule": ("pad", "crop"),
            "error_map_mode": ("rmse", "mse"),
            "lr_schedule": ("paper", "reference"),
            "pointnet_norm": NORMS,
            "pointnet_loss_extent": ("frame", "padded"),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        if self.pointnet_second_stride not in (1, 2):
            raise ValueError(f"pointnet_second_stride must be 1 or 2, got {self.pointnet_second_stride}")
        n = len(self.encoder_filters)
        if not (len(self.encoder_kernels) == len(self.encoder_strides) == n):
            raise ValueError("encoder_kernels, encoder_filters and encoder_strides need equal lengths")
        super().__post_init__()
        if self.keypoint_refinement_steps < 0:
            raise ValueError("keypoint_refinement_steps must be >= 0 (0 = the PointNet's keypoints), "
                             f"got {self.keypoint_refinement_steps}")
        if self.pointnet_final_steps < 0:
            raise ValueError(f"pointnet_final_steps must be >= 0 (0 = no final PointNet phase), "
                             f"got {self.pointnet_final_steps}")
        if self.pointnet_final_steps and not (self.pointnet_final_learning_rate > 0 and self.pointnet_final_frames >= 1):
            raise ValueError(f"the final PointNet phase needs pointnet_final_learning_rate > 0 and "
                             f"pointnet_final_frames >= 1, got {self.pointnet_final_learning_rate} and "
                             f"{self.pointnet_final_frames}")
        if self.pointnet_final_criterion not in FINAL_PHASE_CRITERIA:
            raise ValueError(f"pointnet_final_criterion must be one of {', '.join(FINAL_PHASE_CRITERIA)}, "
                             f"got {self.pointnet_final_criterion!r}")
        if self.pointnet_final_sigma_start < 0:
            raise ValueError(f"pointnet_final_sigma_start must be >= 0 (0 = no annealing), "
                             f"got {self.pointnet_final_sigma_start}")
        if self.pointnet_restart_step < 0:
            raise ValueError(f"pointnet_restart_step must be >= 0 (0 = never), got {self.pointnet_restart_step}")
        if not self.lsp_layers:
            raise ValueError("lsp_layers needs at least one encoder layer")
        bad = [i for i in self.lsp_layers if not 0 <= i < n]
        if bad:
            raise ValueError(
                f"lsp_layers {bad} do not exist: the encoder has {n} layers (indices 0..{n - 1})"
            )
        if len(set(self.lsp_layers)) != len(self.lsp_layers):
            raise ValueError(
                f"lsp_layers {self.lsp_layers} names a layer twice; list each encoder layer once"
            )
        for layer in self.lsp_layers:
            size = self.feature_sizes[layer]
            cells = -(-size // self.patch_size) if self.odd_size_rule == "pad" else size // self.patch_size
            if cells < 3:
                raise ValueError(
                    f"patch_size {self.patch_size} leaves encoder layer {layer} ({size}x{size} "
                    f"features) {cells}x{cells} cells: a cell needs neighbours to be predicted "
                    f"from, so use patch_size <= {max(1, size // 3)} for this layer or drop it "
                    "from lsp_layers"
                )
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        check_positive_sizes_and_rates(self)

    @property
    def keypoint_network_restart_step(self) -> int:
        return self.pointnet_restart_step

    @property
    def feature_sizes(self) -> tuple[int, ...]:
        """Side of each encoder layer's feature map ("same" convolutions: ceil(size / stride))."""
        sizes, size = [], self.image_size
        for stride in self.encoder_strides:
            size = -(-size // stride)
            sizes.append(size)
        return tuple(sizes)

    @classmethod
    def for_game(cls, game: str, **changes) -> "PermaKeyConfig":
        """The paper's configuration with the authors' K for ``game``."""
        changes.setdefault("num_keypoints", get_game(game).num_keypoints)
        return cls(**changes)


@dataclasses.dataclass(frozen=True)
class TransporterConfig(KeypointHeadConfig, ConfigMixin):
    """Transporter's hyperparameters (docs/BACKGROUND.md section 5).

    Defaults follow the authors' re-implementation (the baseline behind the PermaKey paper's
    comparisons) with the training schedule the PermaKey paper's appendix A.2.2 states for that
    re-implementation (its code ran a lower rate, 2e-4); the module docstring of
    ``permakey_tf/models/transporter.py`` lists every difference from DeepMind's description.

    Attributes:
      image_size: frames are image_size x image_size x 3 (84).
      encoder_kernels / encoder_filters / encoder_strides: the Conv-Norm-ReLU stack used (with its
        own weights) as feature encoder and as keypointer trunk. Kernels (3, 3, 3, 3) as the
        re-implementation; DeepMind's code uses (7, 3, 3, 3). Strides (1, 1, 2, 1) give 42x42
        features on 84x84 frames.
      decoder_filters: widths of the refine net's Conv-Norm-ReLU blocks (re-implementation:
        128, 128, 64, 32); a final 3x3 conv maps to RGB.
      decoder_upsample_after: indices of decoder blocks followed by a 2x bilinear upsampling; there
        must be one per factor 2 of the encoder's total stride.
      decoder_output: "linear" (DeepMind: plain conv output), "sigmoid", or "bn_sigmoid" (the
        re-implementation: conv -> BatchNorm -> sigmoid).
      decoder_offset_init: "data_mean" (default: set before the first step of a new run from the
        mean colour of the first training batches, through the inverse of the output
        non-linearity) or "zero" (both codes: the offset starts at 0, every pixel at 0.5 after the
        sigmoid). The papers are silent on it. Adam moves that offset by about one learning rate
        per step, so from 0 it needs thousands of steps to reach a dark channel's colour, and until
        then the error of the static background dwarfs that of the objects the keypoints should
        move to (measured on Pong: docs/notes/transporter-diagnosis.md).
      norm: "batch" (both papers' BatchNorm), "layer" or "instance" (DeepMind's code notes these are
        "quite a lot more stable").
      num_keypoints, keypoint_sigma and the other keypoint-bottleneck fields: as PermaKey's
        (:class:`KeypointHeadConfig`).
      l2_weight: weight of sum(kernel^2) over all conv kernels added to the loss. The
        re-implementation declares l2(0.1) on every kernel but its custom loop never adds it, so
        its effective value is 0 (the default); DeepMind's code declares l2(1.0).
      learning_rate: Adam's initial learning rate: 5e-4, as the PermaKey paper's appendix A.2.2
        states for its Transporter; the authors' code ran 2e-4 (``--set learning_rate=2e-4``).
      lr_schedule: "paper" (x lr_decay_rate every lr_decay_steps, staircase) or "reference"
        (InverseTimeDecay(lr, lr_decay_steps, lr_decay_rate, staircase) as the authors' code).
      lr_decay_rate / lr_decay_steps: 0.9 every 30,000 steps.
      keypointer_restart_step: 0 (never; both papers) or the optimizer step at which the
        keypointer gets fresh weights and a fresh optimizer state
        (:meth:`Transporter.restart_keypointer`, applied by train.py's ``RestartKeypointNetwork``
        callback), so that keypoints whose softmax saturated on something static before the
        decoder could draw the moving objects start again next to a trained encoder and decoder.
      heatmap_temperature_start / heatmap_temperature_anneal_steps: an annealed heatmap
        temperature in training (both 0 = off, the default; neither paper anneals). The keypointer's
        temperature starts at ``heatmap_temperature_start`` and falls geometrically to
        ``heatmap_temperature`` over the first ``heatmap_temperature_anneal_steps`` optimizer steps,
        then stays there; inference always uses ``heatmap_temperature``. A warm start spreads each
        keypoint's softmax, so its position takes gradient from the whole frame, not only from
        where its heatmap already peaks.
    """

    image_size: int = 84
    encoder_kernels: tuple[int, ...] = (3, 3, 3, 3)
    encoder_filters: tuple[int, ...] = (16, 16, 32, 32)
    encoder_strides: tuple[int, ...] = (1, 1, 2, 1)
    decoder_filters: tuple[int, ...] = (128, 128, 64, 32)
    decoder_upsample_after: tuple[int, ...] = (1,)
    decoder_output: str = "bn_sigmoid"
    decoder_offset_init: str = "data_mean"
    norm: str = "batch"
    l2_weight: float = 0.0
    learning_rate: float = 5e-4
    lr_schedule: str = "paper"
    lr_decay_rate: float = 0.9
    lr_decay_steps: int = 30_000
    keypointer_restart_step: int = 0
    heatmap_temperature_start: float = 0.0
    heatmap_temperature_anneal_steps: int = 0

    DECODER_OUTPUTS = ("linear", "sigmoid", "bn_sigmoid")
    DECODER_OFFSET_INITS = ("zero", "data_mean")
    NORMS = NORMS
    LR_SCHEDULES = ("paper", "reference")

    def __post_init__(self):
        n = len(self.encoder_filters)
        if not (len(self.encoder_kernels) == len(self.encoder_strides) == n) or n == 0:
            raise ValueError(
                "encoder_kernels, encoder_filters and encoder_strides need equal, non-zero lengths"
            )
        super().__post_init__()
        check_positive_sizes_and_rates(self)
        if self.l2_weight < 0:
            raise ValueError(f"l2_weight must be >= 0, got {self.l2_weight}")
        if self.keypointer_restart_step < 0:
            raise ValueError(f"keypointer_restart_step must be >= 0 (0 = never), got {self.keypointer_restart_step}")
        if self.heatmap_temperature_anneal_steps < 0 or (
                (self.heatmap_temperature_anneal_steps > 0) != (self.heatmap_temperature_start > 0)):
            raise ValueError(
                "an annealed heatmap temperature needs both heatmap_temperature_start > 0 and "
                "heatmap_temperature_anneal_steps > 0 (or both 0 = off); got "
                f"{self.heatmap_temperature_start} and {self.heatmap_temperature_anneal_steps}")
        for name, value, valid in (
            ("decoder_output", self.decoder_output, self.DECODER_OUTPUTS),
            ("decoder_offset_init", self.decoder_offset_init, self.DECODER_OFFSET_INITS),
            ("norm", self.norm, self.NORMS),
            ("lr_schedule", self.lr_schedule, self.LR_SCHEDULES),
        ):
            if value not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {value!r}")
        stride = 1
        for s in self.encoder_strides:
            stride *= s
        if self.image_size % stride:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the encoder's total stride "
                f"{stride}; change image_size or encoder_strides"
            )
        if stride & (stride - 1):
            raise ValueError(f"the encoder's total stride must be a power of 2, got {stride}")
        upsamplings = stride.bit_length() - 1
        if len(self.decoder_upsample_after) != upsamplings:
            raise ValueError(
                f"decoder_upsample_after has {len(self.decoder_upsample_after)} entries but the "
                f"encoder's total stride {stride} needs {upsamplings} 2x upsamplings"
            )
        bad = [i for i in self.decoder_upsample_after if not 0 <= i < len(self.decoder_filters)]
        if bad:
            raise ValueError(
                f"decoder_upsample_after {bad} do not exist: the decoder has "
                f"{len(self.decoder_filters)} blocks (indices 0..{len(self.decoder_filters) - 1})"
            )

    @property
    def keypoint_network_restart_step(self) -> int:
        return self.keypointer_restart_step

    @property
    def feature_size(self) -> int:
        """Side of the encoder's (and keypointer's) feature maps (42 for the defaults)."""
        stride = 1
        for s in self.encoder_strides:
            stride *= s
        return self.image_size // stride

    @classmethod
    def for_game(cls, game: str, **changes) -> "TransporterConfig":
        """The default configuration with the authors' K for ``game``."""
        changes.setdefault("num_keypoints", get_game(game).num_keypoints)
        return cls(**changes)
