"""One markdown row per (run, eval noise) with everything that tells per-frame keypoints from a
fixed layout, for docs/notes/one-seed-results.md.

    python experiments/keypoint_table.py OUT/*/metrics.json [--classes Player,Ball,Enemy]

Columns: F1 and the model's own fixed layout's F1 (and their ratio), recall, per-class recall,
border / HUD / bar shares, shift-equivariance gain, probe R^2, PointNet loss over its fixed
layout's (PermaKey).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

COLUMNS = ("f1", "fixed f1", "x fixed", "recall", "classes", "border", "HUD", "bar", "shift gain",
           "probe R2", "PN loss / fixed")


def _num(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def row(run: dict, noise: str, results: dict, classes=None) -> str:
    own, fixed = results["model"], results.get("fixed_layout", {})
    ratio = own["f1"] / fixed["f1"] if fixed.get("f1") else None
    recalls = {k.split("/", 1)[1]: v for k, v in own.items() if k.startswith("recall_class/")}
    names = [c for c in classes if c in recalls] if classes else sorted(recalls)
    class_text = ", ".join(f"{name} {_num(recalls[name])}" for name in names)
    cells = [_num(own["f1"], 3), _num(fixed.get("f1"), 3), _num(ratio, 1), _num(own["recall"]),
             class_text, _num(own.get("border_share")), _num(own.get("hud_share")),
             _num(own.get("bar_share")), _num(own.get("shift_gain")), _num(own.get("probe_r2")),
             _num(own.get("pointnet_loss_ratio"))]
    return f"| {run['game']} | {run['model']} | {run['label'].split('/')[-1]} | {noise} | " + " | ".join(cells) + " |"


def table(reports, classes=None) -> str:
    header = "| game | model | run | eval noise | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (4 + len(COLUMNS))]
    for report in reports:
        for run in report["runs"]:
            for noise, results in run["results"].items():
                lines.append(row(run, noise, results, classes))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_json", nargs="+")
    parser.add_argument("--classes", default=None, help="comma-separated classes to list (default all)")
    args = parser.parse_args(argv)
    reports = []
    for path in args.metrics_json:
        with open(path) as f:
            reports.append(json.load(f))
    print(table(reports, args.classes.split(",") if args.classes else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
