"""Loading a game's dataset: one split of the ``tfds_atari`` builder as example dicts in
generation order, and the pipelines of ``permakey_tf.data.pipelines`` over it.

The dataset variant is chosen by keyword arguments (``data_dir``, ``train_frames``,
``validation_frames``, ``test_frames``, ``dataset_seed``: its collection seed,
``build_if_missing``, ``shuffle_files``); ``permakey_tf.training.run_config.DataSettings`` gives
them for a run. A missing dataset is built unless ``build_if_missing`` is False.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from permakey_tf.data.noise import NoiseConfig
from permakey_tf.data.pipelines import AUTOTUNE, SPLITS, PairConfig, evaluation_batches, frame_batches, pair_batches
from permakey_tf.data.streams import deterministic


def _load(game, split, *, data_dir, train_frames, validation_frames, test_frames, seed,
          build_if_missing, shuffle_files):
    import tensorflow_datasets as tfds

    import tfds_atari

    base = split.split("[")[0]
    if base not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits: {', '.join(SPLITS)}.")
    builder = tfds_atari.get_builder(
        game,
        data_dir=data_dir,
        train_frames=train_frames,
        validation_frames=validation_frames,
        test_frames=test_frames,
        seed=seed,
    )
    tfds_atari.ensure_prepared(builder, build_if_missing=build_if_missing)
    read_config = tfds.ReadConfig(shuffle_seed=seed, num_parallel_calls_for_decode=AUTOTUNE)
    ds = builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config)
    return builder, deterministic(ds)


def load_split(
    game: str,
    split: str,
    *,
    data_dir: Optional[str] = None,
    train_frames: int = 85_000,
    validation_frames: int = 5_000,
    test_frames: int = 5_000,
    seed: int = 0,
    build_if_missing: bool = True,
    shuffle_files: bool = False,
) -> tf.data.Dataset:
    """Example dicts of one split of the ``atari_frames/<game>`` TFDS dataset.

    A missing dataset is built (TFDS shows progress) unless ``build_if_missing`` is False, in
    which case ``tfds_atari.ensure_prepared`` raises an error that says how to build it.

    Args:
      game: a game name (``tfds_atari.games``; an unknown name lists the valid ones).
      split: "train", "validation" or "test", optionally with TFDS slicing ("train[:10%]").
      data_dir: TFDS data directory (None: TFDS's default).
      train_frames / validation_frames / test_frames / seed: the dataset's configuration (the
        values that built it; ``seed`` here is the collection seed, not a pipeline seed).
      build_if_missing: build the dataset if it is not prepared.
      shuffle_files: read shards in a seeded random order (breaks generation order; fine for
        single frames, wrong for pairs and per-episode evaluation).
    """
    _, ds = _load(game, split, data_dir=data_dir, train_frames=train_frames,
                  validation_frames=validation_frames, test_frames=test_frames, seed=seed,
                  build_if_missing=build_if_missing, shuffle_files=shuffle_files)
    return ds


def _load_ordered(game: str, split: str, **split_kwargs) -> tf.data.Dataset:
    """load_split in generation order; an error if the dataset was written shuffled."""
    split_kwargs = {**_SPLIT_DEFAULTS, **split_kwargs, "shuffle_files": False}
    builder, ds = _load(game, split, **split_kwargs)
    if not builder.info.disable_shuffling:
        raise RuntimeError(
            f"{builder.info.full_name} was written with example shuffling, so its examples are "
            "not in episode order, which frame pairs and per-episode evaluation need; the "
            "tfds_atari builder must set disable_shuffling=True (rebuild the dataset after that)"
        )
    return ds


_SPLIT_DEFAULTS = dict(data_dir=None, train_frames=85_000, validation_frames=5_000,
                       test_frames=5_000, seed=0, build_if_missing=True, shuffle_files=False)


def _split_kwargs(dataset_kwargs: dict) -> dict:
    unknown = sorted(set(dataset_kwargs) - set(_SPLIT_DEFAULTS) - {"dataset_seed"})
    if unknown:
        raise TypeError(
            f"unknown dataset arguments {unknown}; valid: {sorted(_SPLIT_DEFAULTS)} "
            "(pass the collection seed as dataset_seed)"
        )
    kwargs = {**_SPLIT_DEFAULTS, **dataset_kwargs}
    kwargs["seed"] = kwargs.pop("dataset_seed", 0)
    return kwargs


def _builder(game: str, dataset_kwargs: dict):
    import tfds_atari

    kwargs = _split_kwargs(dataset_kwargs)
    return tfds_atari.get_builder(game, **{k: kwargs[k] for k in (
        "data_dir", "train_frames", "validation_frames", "test_frames", "seed")})


def class_names(game: str, **dataset_kwargs) -> tuple[str, ...]:
    """The dataset's object class names (``objects/label`` index -> name), read from its
    metadata without loading frames; ``dataset_kwargs`` choose the dataset as for load_frames."""
    return tuple(_builder(game, dataset_kwargs).info.features["objects"]["label"].names)


def dataset_version(game: str, **dataset_kwargs) -> str:
    """The version of the dataset that load_frames / load_evaluation read (the builder's
    current one), e.g. "1.3.0"."""
    return str(_builder(game, dataset_kwargs).version)


def load_frames(game: str, split: str, *, training: Optional[bool] = None, batch_size: int = 32,
                seed: int = 0, noise: NoiseConfig = NoiseConfig(), shuffle_buffer: int = 10_000,
                **dataset_kwargs) -> tf.data.Dataset:
    """``frame_batches`` over ``load_split``. ``training`` defaults to ``split`` being "train";
    ``seed`` seeds the pipeline (shuffle, noise); ``dataset_kwargs`` choose the dataset:
    data_dir, train_frames, validation_frames, test_frames, dataset_seed (its collection seed),
    build_if_missing, shuffle_files."""
    if training is None:
        training = split.startswith("train")
    examples = load_split(game, split, **_split_kwargs(dataset_kwargs))
    return frame_batches(examples, batch_size=batch_size, training=training, seed=seed,
                         noise=noise, shuffle_buffer=shuffle_buffer)


def load_pairs(game: str, split: str, *, training: Optional[bool] = None, batch_size: int = 64,
               seed: int = 0, noise: NoiseConfig = NoiseConfig(), pairs: PairConfig = PairConfig(),
               shuffle_buffer: int = 5_000, **dataset_kwargs) -> tf.data.Dataset:
    """``pair_batches`` over the split in generation order (arguments as load_frames)."""
    if training is None:
        training = split.startswith("train")
    examples = _load_ordered(game, split, **_split_kwargs(dataset_kwargs))
    return pair_batches(examples, batch_size=batch_size, training=training, seed=seed,
                        noise=noise, pairs=pairs, shuffle_buffer=shuffle_buffer)


def load_evaluation(game: str, split: str, *, batch_size: int = 32, seed: int = 0,
                    noise: NoiseConfig = NoiseConfig(), max_objects: Optional[int] = None,
                    **dataset_kwargs) -> tf.data.Dataset:
    """``evaluation_batches`` over the split in generation order (arguments as load_frames)."""
    examples = _load_ordered(game, split, **_split_kwargs(dataset_kwargs))
    return evaluation_batches(examples, batch_size=batch_size, seed=seed, noise=noise,
                              max_objects=max_objects)
