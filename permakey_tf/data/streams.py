"""The random streams of the tf.data pipelines, all drawn from one integer ``seed``.

Contract:
  * shuffling uses ``Dataset.shuffle(seed=...)`` (reshuffled each epoch, the same sequence of
    orders in every run; TensorFlow combines the op seed with the global seed, so runs that call
    ``keras.utils.set_random_seed`` with different values also shuffle differently);
  * noise is drawn with stateless ops from a per-frame key (seed, episode_id, step, role), so a
    frame's bars do not depend on batch size, shuffling or parallelism. In training mode a random
    stream (``Dataset.random(rerandomize_each_iteration=True)``) is folded into the key: fresh bars
    every epoch, the same sequence of bars in every run. In evaluation mode the key is the frame
    alone: every pass, and the evaluation pipeline, see identical bars on a given frame.
"""

from __future__ import annotations

import tensorflow as tf

from permakey_tf.data.noise import RNG_ALG

# Salts that separate the random streams drawn from one user seed.
SALT_FRAME_NOISE = 1
SALT_SOURCE_NOISE = 2
SALT_TARGET_NOISE = 3
SALT_WINDOW_PAIRS = 4
SALT_SHUFFLE = 5
SALT_EPOCH_STREAM = 6


def derive_int_seed(seed: int, salt: int) -> int:
    """A tf.data op seed (Python int) for one stream of ``seed``."""
    return (int(seed) * 1_000_003 + salt * 7_919) % (2**31 - 1)


def fold(key: tf.Tensor, value) -> tf.Tensor:
    """A stateless key ``[2]`` int64 derived from ``key`` and one integer ``value``."""
    return tf.random.experimental.stateless_fold_in(key, tf.cast(value, tf.int64), alg=RNG_ALG)


def frame_key(seed: int, salt: int, episode_id, step, epoch_random=None) -> tf.Tensor:
    """Stateless seed ``[2]`` int64 for one frame: (seed, salt, episode, step[, epoch stream])."""
    key = tf.constant([int(seed), salt], tf.int64)
    key = fold(fold(key, episode_id), step)
    if epoch_random is not None:
        key = fold(key, epoch_random)
    return key


def shuffled_with_epoch_stream(ds: tf.data.Dataset, shuffle_buffer: int, seed: int) -> tf.data.Dataset:
    """Training order: seeded reshuffle every epoch, each element paired with the epoch's random."""
    ds = ds.shuffle(
        shuffle_buffer,
        seed=derive_int_seed(seed, SALT_SHUFFLE),
        reshuffle_each_iteration=True,
    )
    return with_epoch_stream(ds, seed)


def with_epoch_stream(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Zips an int64 random stream, different every epoch but the same sequence in every run."""
    stream = tf.data.Dataset.random(
        seed=derive_int_seed(seed, SALT_EPOCH_STREAM), rerandomize_each_iteration=True
    )
    return tf.data.Dataset.zip(ds, stream)


def deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with ``Options.deterministic = True``: parallel maps keep their order."""
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)
