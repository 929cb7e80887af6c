"""Builds one atari_frames variant with progress bars and reports frames/s.

  python -m tfds_atari.build --game spaceinvaders [--train-frames N] [--validation-frames N]
      [--test-frames N] [--seed S] [--max-episode-steps N] [--data-dir D] [--workers W] [--stats]

Emulator worker processes default to $TFDS_ATARI_WORKERS or the CPU count; they never change the
data. The same flags (and seed) always give byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _parse(argv):
    from tfds_atari.atari_frames_dataset_builder import (
        DEFAULT_MAX_EPISODE_STEPS, DEFAULT_SEED, DEFAULT_TEST_FRAMES, DEFAULT_TRAIN_FRAMES,
        DEFAULT_VALIDATION_FRAMES,
    )
    from tfds_atari.games import GAMES

    parser = argparse.ArgumentParser(prog="python -m tfds_atari.build", description=__doc__.split("\n")[0])
    parser.add_argument("--game", required=True, help=f"one of: {', '.join(sorted(GAMES))}")
    parser.add_argument("--train-frames", type=int, default=DEFAULT_TRAIN_FRAMES)
    parser.add_argument("--validation-frames", type=int, default=DEFAULT_VALIDATION_FRAMES)
    parser.add_argument("--test-frames", type=int, default=DEFAULT_TEST_FRAMES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-episode-steps", type=int, default=DEFAULT_MAX_EPISODE_STEPS)
    parser.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS's)")
    parser.add_argument("--workers", type=int, default=None, help="emulator processes (default: CPU count)")
    parser.add_argument("--stats", action="store_true", help="print, per split, objects per frame, HUD share, each class's presence and how often the player is away from the walls")
    parser.add_argument("--rebuild", action="store_true",
                        help="move an existing (e.g. damaged) copy of the variant aside and build it again")
    return parser.parse_args(argv)


def object_stats(builder, split: str = "train") -> dict:
    """Over one split: frames, episodes, mean objects per frame, share of HUD and static objects,
    ``class_presence`` (per class, the share of frames showing at least one) and
    ``player_x_middle_share`` (share of frames whose first Player's centre lies in the middle 60%
    of the width: a policy that parks the player at a wall scores low)."""
    import numpy as np
    import tensorflow_datasets as tfds

    names = builder.info.features["objects"]["label"].names
    counts, hud, static, episodes = [], 0, 0, set()
    present = {name: 0 for name in names}
    player_x = []
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        objects = example["objects"]
        counts.append(len(objects["label"]))
        hud += int(objects["is_hud"].sum())
        static += int(objects["is_static"].sum())
        episodes.add(int(example["episode_id"]))
        for label in set(objects["label"].tolist()):
            present[names[label]] += 1
        players = np.flatnonzero(objects["label"] == names.index("Player")) if "Player" in names else []
        if len(players):
            box = objects["bbox"][players[0]]
            player_x.append((box[1] + box[3]) / 2)
    total = max(1, sum(counts))
    frames = max(1, len(counts))
    player_x = np.asarray(player_x)
    return {"frames": len(counts), "episodes": len(episodes),
            "objects_per_frame": float(np.mean(counts)) if counts else 0.0,
            "hud_share": hud / total, "static_share": static / total,
            "class_presence": {name: round(n / frames, 3) for name, n in present.items() if n},
            "player_x_middle_share": float(np.mean((player_x > 0.2) & (player_x < 0.8))) if len(player_x) else None}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (emulator workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parse(argv)
    from tfds_atari import api
    from tfds_atari.games import UnknownGameError

    if args.data_dir is not None and os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        print(f"error: --data-dir {args.data_dir} is a file, not a folder; choose a folder", file=sys.stderr)
        return 2
    try:
        builder = api.get_builder(
            args.game, data_dir=args.data_dir, train_frames=args.train_frames,
            validation_frames=args.validation_frames, test_frames=args.test_frames, seed=args.seed,
            max_episode_steps=args.max_episode_steps, num_workers=args.workers,
        )
    except (UnknownGameError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except api.DatasetDamagedError as error:  # its metadata cannot be read: the message says what to move
        print(f"error: {error}", file=sys.stderr)
        return 1
    config = builder.builder_config
    total = config.train_frames + config.validation_frames + config.test_frames
    if args.rebuild and os.path.exists(os.fspath(builder.data_dir)):
        print(f"moved the existing copy to {api.set_aside(builder)}")
        builder = api.get_builder(
            args.game, data_dir=args.data_dir, train_frames=args.train_frames,
            validation_frames=args.validation_frames, test_frames=args.test_frames, seed=args.seed,
            max_episode_steps=args.max_episode_steps, num_workers=args.workers,
        )
    if builder.is_prepared():
        problems = api.damaged_files(builder)
        if problems:
            print(f"error: atari_frames/{config.name} at {builder.data_dir} is damaged "
                  f"({'; '.join(problems)}); run again with --rebuild", file=sys.stderr)
            return 1
        print(f"atari_frames/{config.name} already built at {builder.data_dir}")
    else:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        try:
            api.ensure_prepared(builder)
        except api.DatasetNotPreparedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        print(f"built atari_frames/{config.name}: {total} frames in {seconds:.1f} s "
              f"= {total / seconds:.0f} frames/s -> {builder.data_dir}")
        print(f"CPU time (this process and its workers): {cpu:.1f} s = {total / cpu:.0f} frames per CPU-second")
    if args.stats:
        for split in ("train", "validation", "test"):
            print(f"{split} split:", object_stats(builder, split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
