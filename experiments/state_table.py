"""The state-probe table for docs/notes/one-seed-results.md: one row per game and representation.

    python experiments/state_table.py PROBE_DIR/*/probe.json [--per-run]

Columns: F1 per AtariARI category, the mean over categories, and the benchmark's published mean
for the game (RANDOM-CNN, ST-DIM). Rows of a run are named ``<model>/<run>:<representation>``;
the game's baselines (majority, random_cnn, pixels) come first. Keypoint metrics (F1, per-class
recall, HUD / bar shares, shift gain) come from experiments/keypoint_table.py.

--per-run: one row per (game, run) instead, each cell agent-localisation F1 / mean over categories
of one representation or baseline (docs/notes/one-seed-results.md's probe tables).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from permakey_tf.probes.ram_annotations import CATEGORIES

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


RUN_REPRESENTATIONS = (("keypoints", "keypoints raw"), ("keypoints_encoded", "enc."),
                       ("keypoints_colours", "col."), ("keypoints_features", "feat."),
                       ("fixed_layout", "fixed layout"))


def _agent_and_mean(result) -> str:
    if result is None:
        return "-"
    summary = result["summary"]
    return f"{_num(summary.get('agent_localization'))} / {_num(summary.get('mean_over_categories'))}"


def run_table(reports) -> str:
    """One row per (game, run): agent-localisation F1 / mean over categories of each of the run's
    representations beside the game's baselines and the published RANDOM-CNN / ST-DIM means."""
    columns = [label for _, label in RUN_REPRESENTATIONS] + ["majority", "random CNN", "pixels",
                                                            "published", "vars / test frames"]
    lines = ["| game | run | " + " | ".join(columns) + " |", "|" + "---|" * (2 + len(columns))]
    for report in reports:
        for game in report["games"]:
            results = game["results"]
            published = game.get("published") or {}
            reference = (f"{published['RANDOM-CNN']:.2f} / {published['ST-DIM']:.2f}"
                         if published else "none")
            baselines = [_agent_and_mean(results.get(name)) for name in BASELINES]
            runs = sorted({name.split(":")[0] for name in results if ":" in name})
            for run in runs:
                cells = [_agent_and_mean(results.get(f"{run}:{name}")) for name, _ in RUN_REPRESENTATIONS]
                label = " ".join(run.split("/")[1:])
                lines.append(f"| {game['game']} | {label} | " + " | ".join(
                    cells + baselines + [
                        reference, f"{len(game['variables'])} / {game['test_frames_kept']}"]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe_files", nargs="+", help="probe.json files written by probe_state.py")
    parser.add_argument("--per-run", action="store_true",
                        help="one row per run: agent localisation / mean of each representation")
    args = parser.parse_args(argv)
    reports = [json.loads(open(path).read()) for path in args.probe_files]
    print(run_table(reports) if args.per_run else table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
