"""How much each object class moves between the frames Transporter learns from.

    python experiments/pair_motion.py --game pong [--split train] [--preset quick] [--data-dir DIR]
        [--out FILE]

Transporter's keypoints learn only where the target frame differs from the source frame; an
object that rarely moves between the two gives them no reason to go there. For every
(source, target) pair the default "window" sampling can draw from the split (sources 0-48 and
targets 50-98 of each 100-frame window of an episode), and for consecutive frames (what the
frame-difference baseline sees), this prints per object class the share of pairs in which the
object moved by more than 2 px and the median displacement, and writes them as JSON (with the
code version and machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", required=True)
    parser.add_argument("--split", default="train", choices=("train", "validation", "test"))
    parser.add_argument("--preset", default="quick", choices=("paper", "quick", "smoke"),
                        help="the dataset variant (split sizes) of this train.py preset")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--moved-px", type=float, default=2.0, help="displacement that counts as moved")
    parser.add_argument("--out", default=None, help="JSON file to write")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from permakey_tf import console

    console.quiet_tensorflow()
    from permakey_tf.data.pipelines import PairConfig
    from permakey_tf.evaluation.predictions import load_eval_set
    from permakey_tf.evaluation.transport_diagnosis import pair_motion, window_pair_indices
    from permakey_tf.provenance import provenance
    from permakey_tf.scoring.metrics import class_positions
    from permakey_tf.training.run_flags import resolve_config

    settings = resolve_config({"game": args.game, "model": "transporter", "preset": args.preset}).data
    data = load_eval_set(args.game, "none", settings.dataset_arguments(args.data_dir), split=args.split,
                         progress=False)
    positions = class_positions(data.objects)
    pairs = PairConfig()
    sources, targets = window_pair_indices(data.episode_ids, pairs.window_length, pairs.source_range,
                                           pairs.target_range)
    same_episode = np.flatnonzero(data.episode_ids[1:] == data.episode_ids[:-1])
    report = {
        "game": args.game, "split": args.split, "frames": int(len(data.frames)), "moved_px": args.moved_px,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), **provenance(),
        "window_pairs": {"count": int(len(sources)), "pair_config": pairs.to_dict(),
                         "classes": pair_motion(positions, sources, targets, args.moved_px)},
        "consecutive_frames": {"count": int(len(same_episode)),
                               "classes": pair_motion(positions, same_episode, same_episode + 1, args.moved_px)},
    }
    for kind in ("window_pairs", "consecutive_frames"):
        print(f"{args.game} {args.split}, {kind.replace('_', ' ')} ({report[kind]['count']} pairs):")
        for name, motion in report[kind]["classes"].items():
            print(f"  {name:12} moved > {args.moved_px:g} px in {motion['moved_share']:.2f} of "
                  f"{motion['pairs']} pairs, median {motion['median_px']:.1f} px")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
