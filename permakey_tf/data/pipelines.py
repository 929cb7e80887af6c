"""tf.data pipelines over Atari examples: frames for PermaKey, frame pairs for Transporter,
full examples for evaluation (``permakey_tf.data.loading`` reads them from the ``tfds_atari``
builder).

Every pipeline takes a ``tf.data.Dataset`` of example dicts with the dataset's features
(docs/ARCHITECTURE.md): ``image`` uint8 ``[84, 84, 3]``, ``episode_id`` int32, ``step`` int32 and
``objects`` {``bbox`` ``[n, 4]`` (ymin, xmin, ymax, xmax) in [0, 1], ``label`` int64, ``is_hud`` bool,
``is_static`` bool}. Only the evaluation pipeline reads ``objects``.

Order. The pair pipeline and the evaluation pipeline expect examples in generation order:
episode after episode, steps ascending (``tfds_atari`` writes them so, with shuffling disabled,
read with ``shuffle_files=False``). Pairs are validated (same episode, requested step distance),
so unordered input gives fewer pairs, never wrong ones.

Randomness: everything is seeded by one integer ``seed`` through ``permakey_tf.data.streams``
(its docstring: shuffling, noise keys, the epoch stream).
All pipelines set ``Options.deterministic = True``, so parallel maps keep their order.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from permakey_tf.config import ConfigMixin
from permakey_tf.data.noise import RNG_ALG, NoiseConfig, add_bars
from permakey_tf.data.streams import (SALT_FRAME_NOISE, SALT_SOURCE_NOISE, SALT_TARGET_NOISE, SALT_WINDOW_PAIRS,
                                      deterministic, fold, frame_key, shuffled_with_epoch_stream,
                                      with_epoch_stream)

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "validation", "test")
PAIR_SAMPLINGS = ("window", "gap")

_FRAME_KEYS = ("image", "episode_id", "step")


@dataclasses.dataclass(frozen=True)
class PairConfig(ConfigMixin):
    """How Transporter's (source, target) pairs are drawn from one episode.

    Attributes:
      sampling: "window" (the reference's: the episode is cut into consecutive, non-overlapping
        windows of ``window_length`` frames; from each window ``pairs_per_window`` pairs are drawn
        with source index in ``[source_range)`` and target index in ``[target_range)``; the
        episode's last partial window is dropped) or "gap" (every pair (t, t + gap) of one
        episode, each frame once as a source).
      gap: steps from source to target for "gap" (50, the mean distance of the reference's
        window pairs).
      window_length: frames per window for "window" (100).
      source_range / target_range: half-open index ranges inside a window ((0, 49) and (50, 99)).
      pairs_per_window: pairs drawn (independently, with replacement) from each window per pass
        (50: 50 pairs x 2 frames use each frame of the window about once per epoch, like "gap").
        Training redraws them every epoch; evaluation mode keeps them fixed. With 1 pair per window
        the pipeline reads 50 frames per frame it delivers (measured ~20 frames/s out).
    """

    sampling: str = "window"
    gap: int = 50
    window_length: int = 100
    source_range: tuple[int, int] = (0, 49)
    target_range: tuple[int, int] = (50, 99)
    pairs_per_window: int = 50

    def __post_init__(self):
        if self.sampling not in PAIR_SAMPLINGS:
            raise ValueError(
                f"Unknown pair sampling {self.sampling!r}; valid: {', '.join(PAIR_SAMPLINGS)}."
            )
        if self.gap < 1:
            raise ValueError(f"gap must be >= 1 step, got {self.gap}")
        if self.pairs_per_window < 1:
            raise ValueError(f"pairs_per_window must be >= 1, got {self.pairs_per_window}")
        for name in ("source_range", "target_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi <= self.window_length:
                raise ValueError(
                    f"{name} {(lo, hi)} must satisfy 0 <= start < end <= window_length "
                    f"({self.window_length})"
                )
            object.__setattr__(self, name, (int(lo), int(hi)))


# --------------------------------------------------------------------------- input checks


def _pick(keys):
    def pick(example):
        missing = [k for k in keys if k not in example]
        if missing:
            raise KeyError(
                f"examples lack features {missing}; a pipeline needs dicts with {list(keys)} "
                "(see docs/ARCHITECTURE.md, dataset examples)"
            )
        return {k: example[k] for k in keys}

    return pick


def _check_frames_spec(ds: tf.data.Dataset) -> None:
    spec = ds.element_spec
    if not isinstance(spec, dict) or "image" not in spec:
        raise TypeError(
            "pipelines take a dataset of example dicts with an 'image' feature, got element_spec "
            f"{spec}"
        )
    image = spec["image"]
    if image.dtype != tf.uint8 or image.shape.rank != 3 or image.shape[-1] != 3:
        raise TypeError(f"'image' must be uint8 [H, W, 3], got {image.dtype} {image.shape}")


def _shuffle_buffer_ok(shuffle_buffer: int) -> None:
    if shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")


# --------------------------------------------------------------------------- (a) frames


def frame_batches(
    examples: tf.data.Dataset,
    *,
    batch_size: int = 32,
    training: bool = True,
    seed: int = 0,
    noise: NoiseConfig = NoiseConfig(),
    shuffle_buffer: int = 10_000,
    drop_remainder: Optional[bool] = None,
    with_mask: bool = False,
) -> tf.data.Dataset:
    """Single frames for PermaKey.

    Training mode shuffles (seeded, reshuffled each epoch) and draws fresh noise each epoch;
    evaluation mode keeps dataset order and gives every frame the same bars on every pass.

    Args:
      examples: dataset of example dicts (needs ``image``, ``episode_id``, ``step``).
      batch_size: frames per batch.
      training: training or evaluation mode (see above).
      seed: seeds shuffling and noise.
      noise: the Noisy-Atari transform (mode "none" = clean frames).
      shuffle_buffer: examples in the shuffle buffer (training only); 10,000 frames ~ 210 MB.
      drop_remainder: drop a last partial batch; default True when training (static batch shape),
        False otherwise.
      with_mask: also return the bar masks.

    Returns:
      Batches of uint8 ``[B, 84, 84, 3]``, or ``(frames, bar_mask bool [B, 84, 84])`` with
      ``with_mask``.
    """
    _check_frames_spec(examples)
    _shuffle_buffer_ok(shuffle_buffer)
    if drop_remainder is None:
        drop_remainder = training
    ds = examples.map(_pick(_FRAME_KEYS), num_parallel_calls=AUTOTUNE)
    if training:
        ds = shuffled_with_epoch_stream(ds, shuffle_buffer, seed)
    else:
        ds = ds.map(lambda ex: (ex, tf.constant(0, tf.int64)))

    def noisy_frame(example, epoch_random):
        if not noise.enabled:
            image = example["image"]
            mask = tf.zeros(tf.shape(image)[:2], tf.bool)
        else:
            key = frame_key(
                seed,
                SALT_FRAME_NOISE,
                example["episode_id"],
                example["step"],
                epoch_random if training else None,
            )
            image, mask = add_bars(example["image"], key, noise)
        return (image, mask) if with_mask else image

    ds = ds.map(noisy_frame, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return deterministic(ds.prefetch(AUTOTUNE))


# --------------------------------------------------------------------------- (b) pairs


def _gap_pairs(frames: tf.data.Dataset, gap: int) -> tf.data.Dataset:
    """(source, target) example pairs with target = source + gap steps, one episode."""
    pairs = tf.data.Dataset.zip(frames, frames.skip(gap))
    return pairs.filter(
        lambda s, t: tf.logical_and(
            tf.equal(s["episode_id"], t["episode_id"]),
            tf.equal(tf.cast(t["step"], tf.int64) - tf.cast(s["step"], tf.int64), gap),
        )
    )


def _window_pairs(
    frames: tf.data.Dataset, pairs: PairConfig, training: bool, seed: int
) -> tf.data.Dataset:
    """Pairs drawn from consecutive windows of ``window_length`` frames of one episode."""
    length = pairs.window_length
    windows = frames.group_by_window(
        key_func=lambda ex: tf.cast(ex["episode_id"], tf.int64),
        reduce_func=lambda _, window: window.batch(length),
        window_size=length,
    )

    def complete(window):
        steps = tf.cast(window["step"], tf.int64)
        full = tf.equal(tf.shape(steps)[0], length)
        consecutive = tf.reduce_all(tf.equal(steps[1:] - steps[:-1], 1))
        return tf.logical_and(full, consecutive)

    windows = windows.filter(complete)
    if training:
        windows = with_epoch_stream(windows, seed)
    else:
        windows = windows.map(lambda w: (w, tf.constant(0, tf.int64)))

    def draw(window, epoch_random):
        key = frame_key(
            seed,
            SALT_WINDOW_PAIRS,
            window["episode_id"][0],
            window["step"][0],
            epoch_random if training else None,
        )
        n = pairs.pairs_per_window
        src_key = fold(key, 0)
        tgt_key = fold(key, 1)
        src = tf.random.stateless_uniform(
            [n], src_key, *pairs.source_range, dtype=tf.int32, alg=RNG_ALG
        )
        tgt = tf.random.stateless_uniform(
            [n], tgt_key, *pairs.target_range, dtype=tf.int32, alg=RNG_ALG
        )
        source = {k: tf.gather(window[k], src) for k in _FRAME_KEYS}
        target = {k: tf.gather(window[k], tgt) for k in _FRAME_KEYS}
        return tf.data.Dataset.from_tensor_slices((source, target))

    return windows.flat_map(draw)


def pair_batches(
    examples: tf.data.Dataset,
    *,
    batch_size: int = 64,
    training: bool = True,
    seed: int = 0,
    noise: NoiseConfig = NoiseConfig(),
    pairs: PairConfig = PairConfig(),
    shuffle_buffer: int = 5_000,
    drop_remainder: Optional[bool] = None,
    with_info: bool = False,
) -> tf.data.Dataset:
    """(source, target) frame pairs from one episode for Transporter.

    ``examples`` must be in generation order (episodes contiguous, steps ascending); pairs never
    cross episodes and always have the configured step distance. Noise is drawn independently for
    source and target (fresh each epoch in training mode, fixed in evaluation mode). Training
    shuffles the pairs with ``shuffle_buffer``.

    Returns:
      Batches of ``(source, target)``, each uint8 ``[B, 84, 84, 3]``. With ``with_info``:
      ``(source, target, info)`` where info holds int32 ``[B]`` ``episode_id``, ``source_step``,
      ``target_step`` and bool ``[B, 84, 84]`` ``source_mask``, ``target_mask``.
    """
    _check_frames_spec(examples)
    _shuffle_buffer_ok(shuffle_buffer)
    if not isinstance(pairs, PairConfig):
        raise TypeError(f"pairs must be a PairConfig, got {type(pairs).__name__}")
    if drop_remainder is None:
        drop_remainder = training
    frames = examples.map(_pick(_FRAME_KEYS), num_parallel_calls=AUTOTUNE)
    if pairs.sampling == "gap":
        ds = _gap_pairs(frames, pairs.gap)
    else:
        ds = _window_pairs(frames, pairs, training, seed)
    if training:
        ds = shuffled_with_epoch_stream(ds, shuffle_buffer, seed)
    else:
        ds = ds.map(lambda s, t: ((s, t), tf.constant(0, tf.int64)))

    def noisy_pair(pair, epoch_random):
        source, target = pair
        outputs = []
        for example, salt in ((source, SALT_SOURCE_NOISE), (target, SALT_TARGET_NOISE)):
            image = example["image"]
            if noise.enabled:
                key = frame_key(
                    seed, salt, example["episode_id"], example["step"],
                    epoch_random if training else None,
                )
                image, mask = add_bars(image, key, noise)
            else:
                mask = tf.zeros(tf.shape(image)[:2], tf.bool)
            outputs.append((image, mask))
        (src_image, src_mask), (tgt_image, tgt_mask) = outputs
        if not with_info:
            return src_image, tgt_image
        info = {
            "episode_id": tf.cast(source["episode_id"], tf.int32),
            "source_step": tf.cast(source["step"], tf.int32),
            "target_step": tf.cast(target["step"], tf.int32),
            "source_mask": src_mask,
            "target_mask": tgt_mask,
        }
        return src_image, tgt_image, info

    ds = ds.map(noisy_pair, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return deterministic(ds.prefetch(AUTOTUNE))


# --------------------------------------------------------------------------- (c) evaluation


def evaluation_batches(
    examples: tf.data.Dataset,
    *,
    batch_size: int = 32,
    seed: int = 0,
    noise: NoiseConfig = NoiseConfig(),
    max_objects: Optional[int] = None,
) -> tf.data.Dataset:
    """Full examples in dataset order, for metrics and figures.

    The noisy image is the one ``frame_batches(..., training=False)`` gives for the same frame
    and seed (same per-frame key), so evaluation sees exactly the validation/test noise.

    Args:
      examples: example dicts with every feature, in generation order.
      batch_size: examples per batch (the last batch may be smaller).
      seed: the noise seed.
      noise: the Noisy-Atari transform.
      max_objects: pad objects to this many per frame (an error if a frame has more); None pads
        to the most objects in each batch.

    Returns:
      Batches of dicts: ``image`` / ``noisy_image`` uint8 ``[B, 84, 84, 3]``; ``bar_mask`` bool
      ``[B, 84, 84]``; ``episode_id``, ``step`` int32 ``[B]``; ``num_objects`` int32 ``[B]``;
      ``objects``: ``bbox`` float32 ``[B, M, 4]`` (ymin, xmin, ymax, xmax) in [0, 1] (padding 0),
      ``label`` int64 ``[B, M]`` (padding -1), ``is_hud`` / ``is_static`` bool ``[B, M]``
      (padding False), M = ``max_objects`` or the batch's largest count; ``ram`` uint8
      ``[B, 128]`` when the examples carry the console RAM (dataset version >= 1.1.0).
    """
    _check_frames_spec(examples)
    with_ram = "ram" in examples.element_spec
    if "objects" not in examples.element_spec:
        raise TypeError("evaluation_batches needs examples with an 'objects' feature")

    def prepare(example):
        image = example["image"]
        if noise.enabled:
            key = frame_key(seed, SALT_FRAME_NOISE, example["episode_id"], example["step"])
            noisy, mask = add_bars(image, key, noise)
        else:
            noisy, mask = image, tf.zeros(tf.shape(image)[:2], tf.bool)
        objects = example["objects"]
        count = tf.shape(objects["bbox"])[0]
        if max_objects is not None:
            tf.debugging.assert_less_equal(
                count,
                max_objects,
                message=f"a frame has more objects than max_objects={max_objects}; raise it",
            )
        prepared = {
            "image": image,
            "noisy_image": noisy,
            "bar_mask": mask,
            "episode_id": tf.cast(example["episode_id"], tf.int32),
            "step": tf.cast(example["step"], tf.int32),
            "num_objects": tf.cast(count, tf.int32),
            "objects": {
                "bbox": tf.cast(objects["bbox"], tf.float32),
                "label": tf.cast(objects["label"], tf.int64),
                "is_hud": tf.cast(objects["is_hud"], tf.bool),
                "is_static": tf.cast(objects["is_static"], tf.bool),
            },
        }
        if with_ram:
            prepared["ram"] = tf.cast(example["ram"], tf.uint8)
        return prepared

    ds = examples.map(prepare, num_parallel_calls=AUTOTUNE)
    m = max_objects
    padded_shapes = {
        "image": [None, None, 3],
        "noisy_image": [None, None, 3],
        "bar_mask": [None, None],
        "episode_id": [],
        "step": [],
        "num_objects": [],
        "objects": {"bbox": [m, 4], "label": [m], "is_hud": [m], "is_static": [m]},
    }
    padding_values = {
        "image": tf.constant(0, tf.uint8),
        "noisy_image": tf.constant(0, tf.uint8),
        "bar_mask": False,
        "episode_id": 0,
        "step": 0,
        "num_objects": 0,
        "objects": {
            "bbox": 0.0,
            "label": tf.constant(-1, tf.int64),
            "is_hud": False,
            "is_static": False,
        },
    }
    if with_ram:
        padded_shapes["ram"] = [None]
        padding_values["ram"] = tf.constant(0, tf.uint8)
    ds = ds.padded_batch(batch_size, padded_shapes=padded_shapes, padding_values=padding_values)
    return deterministic(ds.prefetch(AUTOTUNE))
