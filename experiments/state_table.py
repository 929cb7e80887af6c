"""The state-probe table for docs/RESULTS.md: one row per game and representation.

    python experiments/state_table.py PROBE_DIR/*/probe.json

Columns: F1 per AtariARI category, the mean over categories, and the benchmark's published mean
for the game (RANDOM-CNN, ST-DIM). Rows of a run are named ``<model>/<run>:<representation>``;
the game's baselines (majority, random_cnn, pixels) come first. Keypoint metrics (F1, per-class
recall, HUD / bar shares, shift gain) come from experiments/keypoint_table.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from permakey_tf.ram_annotations import CATEGORIES

SHORT = {"agent_localization": "agent", "small_object_localization": "small obj",
         "other_localization": "other", "score_clock_lives_display": "score etc", "misc": "misc"}
BASELINES = ("majority", "random_cnn", "pixels")


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _row_name(name: str) -> str:
    return name if ":" not in name else "/".join(name.split(":")[0].split("/")[1:]) + ":" + name.split(":")[1]


def table(reports) -> str:
    header = ("| game | representation | " + " | ".join(SHORT[c] for c in CATEGORIES) +
              " | mean | published RANDOM-CNN / ST-DIM |")
    lines = [header, "|" + "---|" * (3 + len(CATEGORIES) + 1)]
    for report in reports:
        for game in report["games"]:
            published = game.get("published") or {}
            reference = (f"{published['RANDOM-CNN']:.2f} / {published['ST-DIM']:.2f}"
                         if published else "none")
            names = [n for n in BASELINES if n in game["results"]] + sorted(
                n for n in game["results"] if n not in BASELINES)
            for name in names:
                summary = game["results"][name]["summary"]
                cells = [_num(summary.get(c)) for c in CATEGORIES] + [_num(summary.get("mean_over_categories"))]
                lines.append(f"| {game['game']} | {_row_name(name)} | " + " | ".join(cells) + f" | {reference} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe_files", nargs="+", help="probe.json files written by probe_state.py")
    args = parser.parse_args(argv)
    reports = [json.loads(open(path).read()) for path in args.probe_files]
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
