"""The paper's comparison as one table: keypoints against objects and RAM-state probes, one row
per (game, training noise, model, run, evaluation noise), for docs/notes/one-seed-results.md.

    python experiments/paper_table.py --metrics EVAL/*/metrics.json --probes PROBE/*/probe.json

Keypoint columns come from evaluate.py's metrics.json: F1 and the run's own fixed layout's F1,
the player's recall, the other target classes' recall, HUD share, bar share with the bars' area
share (a random point's chance to land on a bar) in brackets, shift-equivariance gain. Probe
columns come from the probe_state.py report whose frame noise equals the row's evaluation noise
and that holds the run: agent-localisation F1 / mean over categories for the encoded keypoints,
the keypoints with the model's features, the run's fixed layout, and the game's random-CNN and
pixel baselines. "-" where a number does not exist (Enduro has no RAM annotation; a clean
evaluation has no bars).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keypoint_table import _num  # noqa: E402  (the sibling scripts' cell formats)
from state_table import _agent_and_mean as _probe_cell  # noqa: E402

COLUMNS = ("game", "trained", "eval", "model", "run", "f1 (fixed)", "player", "other objects",
           "HUD", "bar (area)", "shift gain", "probe enc.", "probe feat.", "probe fixed",
           "probe random CNN", "probe pixels")
PROBE_COLUMNS = (("run", "keypoints_encoded"), ("run", "keypoints_features"),
                 ("run", "fixed_layout"), ("game", "random_cnn"), ("game", "pixels"))


def probe_index(probe_reports) -> dict:
    """(run label, frame noise) -> the probe results of that run's game on those frames; run
    label as in metrics.json, e.g. "pong/permakey/p1"."""
    index = {}
    for report in probe_reports:
        noise = report.get("noise", "none")
        for game in report["games"]:
            for name in game["results"]:
                if ":" in name:
                    index[(name.split(":")[0], noise)] = game["results"]
    return index


def row_cells(run: dict, noise: str, results: dict, probes: dict) -> list[str]:
    """The cells of one row, in COLUMNS order."""
    own, fixed = results["model"], results.get("fixed_layout", {})
    area = results.get("random", {}).get("bar_share")
    recalls = {k.split("/", 1)[1]: v for k, v in own.items() if k.startswith("recall_class/")}
    others = ", ".join(f"{name} {_num(value)}" for name, value in sorted(recalls.items())
                       if name != "Player") or "-"
    bar = "-" if own.get("bar_share") is None else f"{_num(own['bar_share'])} ({_num(area)})"
    game_probes = probes.get((run["label"], noise))
    probe_cells = []
    for scope, representation in PROBE_COLUMNS:
        key = f"{run['label']}:{representation}" if scope == "run" else representation
        probe_cells.append(_probe_cell(game_probes.get(key)) if game_probes else "-")
    trained = (run.get("config") or {}).get("data", {}).get("noise", "?")
    return [run["game"], trained, noise, run["model"], run["label"].split("/")[-1],
            f"{_num(own['f1'], 3)} ({_num(fixed.get('f1'), 3)})", _num(recalls.get("Player")),
            others, _num(own.get("hud_share")), bar, _num(own.get("shift_gain"))] + probe_cells


def table(metrics_reports, probe_reports) -> str:
    probes = probe_index(probe_reports)
    rows = []
    for report in metrics_reports:
        for run in report["runs"]:
            for noise, results in run["results"].items():
                rows.append(row_cells(run, noise, results, probes))
    rows.sort(key=lambda cells: (cells[0], cells[1] != "none", cells[1], cells[2] != "none",
                                 cells[2], cells[3], cells[4]))
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", required=True, help="metrics.json files of evaluate.py")
    parser.add_argument("--probes", nargs="*", default=[], help="probe.json files of probe_state.py")
    args = parser.parse_args(argv)
    reports = [json.loads(Path(path).read_text()) for path in args.metrics]
    probe_reports = [json.loads(Path(path).read_text()) for path in args.probes]
    print(table(reports, probe_reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
