"""TensorFlow Datasets builder for Atari frames with per-frame object boxes.

Public API (TensorFlow is imported only when one of the dataset functions is first used, so that
emulator worker processes stay light):
  get_builder(game, *, data_dir=None, train_frames=85_000, validation_frames=5_000,
              test_frames=5_000, seed=0, ...) -> tfds builder (not prepared)
  ensure_prepared(builder, *, build_if_missing=True) -> builder
  DatasetNotPreparedError, DatasetDamagedError, UnknownGameError, GAMES, get_game, resize_frame
"""

from tfds_atari.frames import resize_frame
from tfds_atari.games import GAMES, Game, UnknownGameError, get_game

_LAZY = {"get_builder", "ensure_prepared", "DatasetNotPreparedError", "DatasetDamagedError",
         "build_command"}

__all__ = sorted({"resize_frame", "GAMES", "Game", "UnknownGameError", "get_game"} | _LAZY)


def __getattr__(name):
    if name in _LAZY:
        from tfds_atari import api

        return getattr(api, name)
    raise AttributeError(f"module 'tfds_atari' has no attribute {name!r}")
