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


class DatasetDamagedError(OSError):
    """A built atari_frames variant's files are missing or do not have the size recorded when
    they were written (a truncated copy, a deleted shard); the message says how to rebuild."""


# Every TFRecord record is framed by 16 bytes (length, its CRC, the data's CRC).
RECORD_FRAMING_BYTES = 16


def get_builder(game: str, *, data_dir: Optional[str] = None, train_frames: int = DEFAULT_TRAIN_FRAMES,
                validation_frames: int = DEFAULT_VALIDATION_FRAMES, test_frames: int = DEFAULT_TEST_FRAMES,
                seed: int = DEFAULT_SEED, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
                num_workers: Optional[int] = None, version: Optional[str] = None) -> Builder:
    """The (not necessarily prepared) atari_frames builder of one game and size.

    Raises tfds_atari.UnknownGameError (listing the valid games) for an unknown game.
    data_dir: TFDS data directory (default: TFDS's, ~/tensorflow_datasets or $TFDS_DATA_DIR).
    num_workers: processes used when building (does not change the data).
    version: None = the current version (Builder.VERSION); an older supported version (e.g.
      "1.0.0", without the `ram` feature) reads data prepared by an older release but cannot be
      built any more.
    """
    config = AtariFramesConfig.make(
        game, train_frames=train_frames, validation_frames=validation_frames, test_frames=test_frames,
        seed=seed, max_episode_steps=max_episode_steps,
    )
    try:
        return Builder(config=Builder.get_builder_config(config.name), data_dir=data_dir,
                       num_workers=num_workers, version=version)
    except Exception as error:  # TFDS reads the prepared variant's metadata when it exists
        from google.protobuf import json_format

        if not isinstance(error, (json_format.ParseError, ValueError, KeyError)):
            raise
        root = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
        folder = os.path.join(os.fspath(root), "atari_frames", config.name, version or str(Builder.VERSION))
        if not os.path.exists(os.path.join(folder, "dataset_info.json")):
            raise
        raise DatasetDamagedError(
            f"Dataset atari_frames/{config.name} in {folder} is damaged: its metadata cannot be read "
            f"({type(error).__name__}). Move {folder} aside (nothing is deleted for you) and build it "
            f"again with:\n  {_command(config, os.fspath(root))}"
        ) from None


_FIELDS = ("train_frames", "validation_frames", "test_frames", "seed", "max_episode_steps")


def _non_default_fields(config: AtariFramesConfig) -> dict:
    defaults = AtariFramesConfig.make(config.game)
    return {f: getattr(config, f) for f in _FIELDS if getattr(config, f) != getattr(defaults, f)}


def build_command(builder: Builder) -> str:
    """The shell command that builds `builder`'s variant."""
    return _command(builder.builder_config, os.fspath(builder.data_dir_root))


def _command(config: AtariFramesConfig, data_dir: str) -> str:
    flags = [f"--{field.replace('_', '-')} {value}" for field, value in _non_default_fields(config).items()]
    return " ".join(["python -m tfds_atari.build", f"--game {config.game}", *flags, f"--data-dir {data_dir}"])


def build_call(builder: Builder) -> str:
    """The Python call that builds `builder`'s variant."""
    config: AtariFramesConfig = builder.builder_config
    kwargs = {"data_dir": os.fspath(builder.data_dir_root), **_non_default_fields(config)}
    arguments = ", ".join([repr(config.game)] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"tfds_atari.ensure_prepared(tfds_atari.get_builder({arguments}))"


def damaged_files(builder: Builder) -> list[str]:
    """What is wrong with a prepared variant's files (empty when nothing): per split, every shard
    must exist and together they must hold the bytes dataset_info.json recorded (its examples'
    bytes plus the TFRecord framing), which catches deleted and truncated shards without reading
    them."""
    problems = []
    root = os.fspath(builder.data_dir)
    for name, split in builder.info.splits.items():
        paths = [os.path.join(root, f) for f in split.filenames]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            problems.append(f"{name}: missing {', '.join(os.path.basename(p) for p in missing)}")
            continue
        size = sum(os.path.getsize(p) for p in paths)
        expected = int(split.num_bytes) + RECORD_FRAMING_BYTES * int(split.num_examples)
        if size != expected:
            problems.append(f"{name}: {size} bytes on disk, {expected} expected (truncated or altered)")
    return problems


def set_aside(builder: Builder) -> Optional[str]:
    """Moves a variant's version folder (damaged or half-written) out of TFDS's way, to
    ``<data_dir>/atari_frames-set-aside/<config>-<version>-<UTC time>``; returns where (None if
    there was nothing). Nothing is deleted."""
    import datetime
    import shutil

    source = os.fspath(builder.data_dir)
    if not os.path.exists(source):
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    target = os.path.join(os.fspath(builder.data_dir_root), "atari_frames-set-aside",
                          f"{builder.builder_config.name}-{builder.version}-{stamp}")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(source, target)
    return target


def ensure_prepared(builder: Builder, *, build_if_missing: bool = True) -> Builder:
    """Returns `builder` with its data on disk, building them (with progress bars) if missing.

    TFDS writes into a temporary `*.incomplete*` directory and renames it only when every split is
    written, so an interrupted build is never read as complete; the next call builds again.
    A version folder without dataset_info.json (half copied or half deleted) is moved aside
    (:func:`set_aside`) before building. A prepared variant whose files are damaged
    (:func:`damaged_files`) raises DatasetDamagedError naming the command that rebuilds it.
    Raises DatasetNotPreparedError (naming the command that builds it) when the data are missing
    and build_if_missing is False.
    """
    if builder.is_prepared() or not build_if_missing:
        return _check_prepared(builder)
    if str(builder.version) != str(Builder.VERSION):
        raise DatasetNotPreparedError(
            f"Dataset atari_frames/{builder.builder_config.name} version {builder.version} is not in "
            f"{os.fspath(builder.data_dir_root)}, and only the current version {Builder.VERSION} can be "
            f"built; leave out version= to build and read {Builder.VERSION} (the release notes in "
            f"tfds_atari/atari_frames_dataset_builder.py say what changed)."
        )
    problem = unwritable_data_dir(os.fspath(builder.data_dir_root))
    if problem:
        raise DatasetNotPreparedError(
            f"Dataset atari_frames/{builder.builder_config.name} is not built, and it cannot be built "
            f"in {os.fspath(builder.data_dir_root)}: {problem}. Choose a data directory you can write "
            "(--data-dir), or build it there once with write access; reading needs none.")
    with _build_lock(builder):  # one builder per variant; a second one waits, then finds it built
        if builder.is_prepared():
            return _check_prepared(builder)
        for path in remove_incomplete_builds(builder):
            print(f"Removed {path}, left by an interrupted build.", flush=True)
        if os.path.exists(os.fspath(builder.data_dir)):
            moved = set_aside(builder)
            print(f"{os.fspath(builder.data_dir)} held an incomplete dataset (no dataset_info.json); "
                  f"moved it to {moved} and building again.", flush=True)
        builder.download_and_prepare()
    return builder


def unwritable_data_dir(root: str) -> Optional[str]:
    """Why nothing can be built under ``root`` (None if it can): tried by creating the
    ``atari_frames`` folder and a scratch file in it, since permission bits say nothing for
    root or for special file systems such as /proc."""
    import tempfile

    try:
        folder = os.path.join(root, "atari_frames")
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        return f"{error.strerror or type(error).__name__} ({error.filename or root})"
    return None


def _build_lock(builder: Builder):
    """An exclusive flock on ``<data_dir>/atari_frames/<config>.lock`` (released when the
    process ends, however it ends)."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def locked():
        root = os.path.join(os.fspath(builder.data_dir_root), builder.name)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, f"{builder.builder_config.name}.lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return locked()


def remove_incomplete_builds(builder: Builder) -> list[str]:
    """Deletes the ``incomplete.*`` folders an interrupted build of this variant left (TFDS
    writes into one and renames it when done). Only call it holding the build lock."""
    import glob
    import shutil

    pattern = os.path.join(os.fspath(builder.data_dir_root), builder.name, builder.builder_config.name,
                           "incomplete.*")
    removed = sorted(glob.glob(pattern))
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _check_prepared(builder: Builder) -> Builder:
    """``builder`` if its data are complete; DatasetDamagedError / DatasetNotPreparedError if not."""
    if builder.is_prepared():
        problems = damaged_files(builder)
        if problems:
            raise DatasetDamagedError(
                f"Dataset atari_frames/{builder.builder_config.name} in {os.fspath(builder.data_dir)} "
                f"is damaged ({'; '.join(problems)}). Rebuild it (the damaged files are moved aside, "
                f"not deleted) with:\n  {build_command(builder)} --rebuild"
            )
        return builder
    config = builder.builder_config
    raise DatasetNotPreparedError(
        f"Dataset atari_frames/{config.name} is not built in {os.fspath(builder.data_dir_root)}. "
        f"Build it with:\n  {build_command(builder)}\nor in Python:\n  {build_call(builder)}"
    )
