"""What the data pipelines call: get a builder for a game and make sure its data exist."""

from __future__ import annotations

import os
from typing import Optional

from tfds_atari.atari_frames_dataset_builder import (
    DEFAULT_MAX_EPISODE_STEPS, DEFAULT_SEED, DEFAULT_TEST_FRAMES, DEFAULT_TRAIN_FRAMES,
    DEFAULT_VALIDATION_FRAMES, AtariFramesConfig, Builder,
)


class DatasetNotPreparedError(FileNotFoundError):
    """The requested atari_frames variant has not been built in the data directory."""


def get_builder(game: str, *, data_dir: Optional[str] = None, train_frames: int = DEFAULT_TRAIN_FRAMES,
                validation_frames: int = DEFAULT_VALIDATION_FRAMES, test_frames: int = DEFAULT_TEST_FRAMES,
                seed: int = DEFAULT_SEED, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
                num_workers: Optional[int] = None) -> Builder:
    """The (not necessarily prepared) atari_frames builder of one game and size.

    Raises tfds_atari.UnknownGameError (listing the valid games) for an unknown game.
    data_dir: TFDS data directory (default: TFDS's, ~/tensorflow_datasets or $TFDS_DATA_DIR).
    num_workers: processes used when building (does not change the data).
    """
    config = AtariFramesConfig.make(
        game, train_frames=train_frames, validation_frames=validation_frames, test_frames=test_frames,
        seed=seed, max_episode_steps=max_episode_steps,
    )
    return Builder(config=Builder.get_builder_config(config.name), data_dir=data_dir, num_workers=num_workers)


_FIELDS = ("train_frames", "validation_frames", "test_frames", "seed", "max_episode_steps")


def _non_default_fields(config: AtariFramesConfig) -> dict:
    defaults = AtariFramesConfig.make(config.game)
    return {f: getattr(config, f) for f in _FIELDS if getattr(config, f) != getattr(defaults, f)}


def build_command(builder: Builder) -> str:
    """The shell command that builds `builder`'s variant."""
    config: AtariFramesConfig = builder.builder_config
    flags = [f"--{field.replace('_', '-')} {value}" for field, value in _non_default_fields(config).items()]
    data_dir = os.fspath(builder.data_dir_root)
    return " ".join(["python -m tfds_atari.build", f"--game {config.game}", *flags, f"--data-dir {data_dir}"])


def build_call(builder: Builder) -> str:
    """The Python call that builds `builder`'s variant."""
    config: AtariFramesConfig = builder.builder_config
    kwargs = {"data_dir": os.fspath(builder.data_dir_root), **_non_default_fields(config)}
    arguments = ", ".join([repr(config.game)] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"tfds_atari.ensure_prepared(tfds_atari.get_builder({arguments}))"


def ensure_prepared(builder: Builder, *, build_if_missing: bool = True) -> Builder:
    """Returns `builder` with its data on disk, building them (with progress bars) if missing.

    TFDS writes into a temporary `*.incomplete*` directory and renames it only when every split is
    written, so an interrupted build is never read as complete; the next call builds again.
    Raises DatasetNotPreparedError (naming the command that builds it) when the data are missing
    and build_if_missing is False.
    """
    if builder.is_prepared():
        return builder
    if not build_if_missing:
        config = builder.builder_config
        raise DatasetNotPreparedError(
            f"Dataset atari_frames/{config.name} is not built in {os.fspath(builder.data_dir_root)}. "
            f"Build it with:\n  {build_command(builder)}\nor in Python:\n  {build_call(builder)}"
        )
    builder.download_and_prepare()
    return builder
