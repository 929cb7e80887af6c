"""Markdown tables from evaluate.py's metrics.json, for docs/notes/one-seed-results.md.

    python experiments/results_table.py runs/eval/quick_check/metrics.json [--metrics f1,recall,...]

One table per metric: a row per (run, noise), the model's value beside its four baselines.
"""

from __future__ import annotations

import argparse
import json
import sys

COLUMNS = ("model", "fixed_layout", "random", "grid", "frame_difference")
DEFAULT_METRICS = ("f1", "recall", "precision", "hud_share", "bar_share", "border_share",
                   "jitter_px", "tracking_error_relative")


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def tables(report: dict, names=DEFAULT_METRICS) -> str:
    blocks = []
    for name in names:
        rows = []
        for run in report["runs"]:
            for noise, results in run["results"].items():
                if name not in results["model"]:
                    continue
                cells = " | ".join(_cell(results.get(c, {}).get(name)) for c in COLUMNS)
                rows.append(f"| {run['label']} | {noise} | {cells} |")
        if not rows:
            continue
        header = "| run | eval noise | " + " | ".join(COLUMNS) + " |"
        blocks.append(f"**{name}**\n\n{header}\n|" + "---|" * (2 + len(COLUMNS)) + "\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_json")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS))
    args = parser.parse_args(argv)
    with open(args.metrics_json) as f:
        report = json.load(f)
    print(tables(report, [m for m in args.metrics.split(",") if m]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
