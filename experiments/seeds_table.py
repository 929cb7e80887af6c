"""The seeds table of one or more report folders (experiments/over_seeds.py wrote them).

    python experiments/seeds_table.py docs/results/2026-12-06_amd-epyc-avx2/pong/permakey ...

Prints a markdown table: one row per (setting, evaluation noise, split), every cell mean ± sd
with the worst seed (permakey_tf.evaluation.seed_summary). With --placement, a second table of
where the keypoints sit (on any object, on targets, HUD, border) and which classes they cover,
HUD and static classes included: the view the ablations over K and layers need.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from permakey_tf.evaluation.seed_summary import format_placement_table, format_seeds_table, load_seed_reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path,
                        help="setting folders <root>/<game>[-<noise>]/<model>[-<tag>] holding seed<S>/")
    parser.add_argument("--placement", action="store_true",
                        help="also print where the keypoints sit and each class's coverage")
    args = parser.parse_args(argv)
    try:
        reports = load_seed_reports(args.folders)
    except ValueError as error:
        print(f"seeds_table.py: error: {error}", file=sys.stderr)
        return 2
    print(format_seeds_table(reports))
    if args.placement:
        print()
        print(format_placement_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
