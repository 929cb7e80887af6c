"""Noisy Atari: coloured bars drawn over uint8 frames (docs/BACKGROUND.md section 5).

Every frame gets its own bar positions, drawn with stateless random ops (Philox) from an explicit
seed, so one seed always gives the same bars on any machine. Besides the noisy frames the
transform returns the bar mask, so that evaluation can count keypoints that sit on a distractor.

Bars (per orientation, ``num_bars`` of them, reference: 1):
  * vertical: full height, ``bar_width`` columns starting at x ~ U{0, ..., W - bar_width};
  * horizontal: full width, ``bar_width`` rows starting at y ~ U{0, ..., H - bar_width};
  * both: one set of each, drawn independently.
Bars always lie wholly inside the frame (the reference's exact range is not recorded).

Blending (``blend``):
  * ``"overwrite"``: bar pixels become ``colour`` (what the authors' code does);
  * ``"additive"``: ``colour`` is added and the sum clipped to 255 (the paper's wording,
    "additively superimpose"). On a black background both give the same pixels.
The default is ``"overwrite"``, the transform that produced the paper's Noisy-Atari results.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from permakey_tf.config import NOISE_MODES, ConfigMixin

BLEND_MODES = ("overwrite", "additive")

# Stateless RNG algorithm: fixed (not "auto_select") so CPU and GPU draw the same bars.
RNG_ALG = "philox"


@dataclasses.dataclass(frozen=True)
class NoiseConfig(ConfigMixin):
    """The Noisy-Atari transform; defaults are the reference's bars (switched off: mode "none").

    Attributes:
      mode: "none" (clean frames), "horizontal", "vertical" or "both".
      bar_width: bar thickness in pixels (5).
      colour: RGB of the bars, 0..255 each ((128, 0, 255), purple).
      blend: "overwrite" (reference code, default) or "additive" (add and clip to 255; the paper's
        wording).
      num_bars: bars per orientation and frame (reference: 1); with "both", 2 * num_bars bars.
    """

    mode: str = "none"
    bar_width: int = 5
    colour: tuple[int, int, int] = (128, 0, 255)
    blend: str = "overwrite"
    num_bars: int = 1

    def __post_init__(self):
        if self.mode not in NOISE_MODES:
            raise ValueError(
                f"Unknown noise mode {self.mode!r}; valid modes: {', '.join(NOISE_MODES)}."
            )
        if self.blend not in BLEND_MODES:
            raise ValueError(
                f"Unknown noise blend {self.blend!r}; valid blends: {', '.join(BLEND_MODES)}."
            )
        if int(self.bar_width) < 1:
            raise ValueError(f"bar_width must be >= 1 pixel, got {self.bar_width}")
        if int(self.num_bars) < 1:
            raise ValueError(
                f"num_bars must be >= 1 (use mode='none' for clean frames), got {self.num_bars}"
            )
        colour = tuple(self.colour)
        if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
            raise ValueError(f"colour must be three integers in 0..255 (R, G, B), got {self.colour}")
        object.__setattr__(self, "colour", tuple(int(c) for c in colour))

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


def as_seed(seed) -> tf.Tensor:
    """An int or a ``[2]`` seed as a ``[2]`` int64 tensor for stateless random ops."""
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise TypeError(f"seed must be an integer or a [2] integer tensor, got dtype {seed.dtype}")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    if seed.shape.rank != 1 or seed.shape[0] != 2:
        raise ValueError(f"seed must be a scalar or have shape [2], got shape {seed.shape}")
    return seed


def _bar_lines(count: tf.Tensor, length: int, config: NoiseConfig, seed: tf.Tensor) -> tf.Tensor:
    """Which of ``length`` lines (rows or columns) are covered by bars, for ``count`` frames.

    Returns:
      bool ``[count, length]``.
    """
    width = int(config.bar_width)
    starts = tf.random.stateless_uniform(
        [count, int(config.num_bars)],
        seed=seed,
        minval=0,
        maxval=length - width + 1,
        dtype=tf.int32,
        alg=RNG_ALG,
    )  # [count, num_bars]
    lines = tf.range(length, dtype=tf.int32)[tf.newaxis, tf.newaxis, :]
    starts = starts[:, :, tf.newaxis]
    covered = (lines >= starts) & (lines < starts + width)  # [count, num_bars, length]
    return tf.reduce_any(covered, axis=1)


def bar_mask(shape, config: NoiseConfig, seed) -> tf.Tensor:
    """The bar mask for frames of ``shape`` = ``[..., H, W, 3]`` (bars drawn per frame).

    Returns:
      bool ``[..., H, W]``: True where a bar covers the pixel.
    """
    shape = tf.TensorShape(shape)
    if shape.rank is None or shape.rank < 3 or shape[-1] != 3:
        raise ValueError(f"frames must be [..., H, W, 3] RGB, got shape {shape}")
    height, width = shape[-3], shape[-2]
    if height is None or width is None:
        raise ValueError(f"frames need static height and width, got shape {shape}")
    if config.bar_width > min(height, width):
        raise ValueError(
            f"bar_width {config.bar_width} does not fit in {height}x{width} frames; "
            "use a bar_width <= the frame size"
        )
    seed = as_seed(seed)
    lead = shape[:-3]
    count = 1
    for d in lead:
        if d is None:
            raise ValueError(f"bar_mask needs a fully static shape, got {shape}")
        count *= d
    mask = tf.zeros([count, height, width], tf.bool)
    if config.mode in ("vertical", "both"):
        cols = _bar_lines(count, width, config, tf.random.experimental.stateless_fold_in(seed, 1, alg=RNG_ALG))
        mask |= cols[:, tf.newaxis, :]
    if config.mode in ("horizontal", "both"):
        rows = _bar_lines(count, height, config, tf.random.experimental.stateless_fold_in(seed, 2, alg=RNG_ALG))
        mask |= rows[:, :, tf.newaxis]
    return tf.reshape(mask, lead.as_list() + [height, width])


def add_bars(frames: tf.Tensor, seed, config: NoiseConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws Noisy-Atari bars over uint8 frames.

    Args:
      frames: uint8 ``[..., H, W, 3]`` (one frame or any batch shape; static shape needed).
      seed: an int or a ``[2]`` integer tensor. The same seed and shape give the same bars;
        every frame in ``frames`` gets its own independently drawn positions.
      config: a NoiseConfig.

    Returns:
      ``(noisy, mask)``: noisy uint8 ``[..., H, W, 3]``; mask bool ``[..., H, W]``, True on bar
      pixels (all False for mode "none", and then ``noisy`` is ``frames``).
    """
    if not isinstance(config, NoiseConfig):
        raise TypeError(f"config must be a NoiseConfig, got {type(config).__name__}")
    frames = tf.convert_to_tensor(frames)
    if frames.dtype != tf.uint8:
        raise TypeError(
            f"add_bars expects uint8 frames (0..255), got {frames.dtype}; cast before adding noise"
        )
    mask = bar_mask(frames.shape, config, seed)
    if not config.enabled:
        return frames, mask
    colour = tf.constant(config.colour, tf.int32)
    if config.blend == "overwrite":
        painted = tf.broadcast_to(tf.cast(colour, tf.uint8), tf.shape(frames))
    else:
        painted = tf.cast(tf.minimum(tf.cast(frames, tf.int32) + colour, 255), tf.uint8)
    noisy = tf.where(mask[..., tf.newaxis], painted, frames)
    return noisy, mask
