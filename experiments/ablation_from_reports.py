"""Ablation charts drawn from committed seed reports instead of run folders.

    python experiments/ablation_from_reports.py \\
        docs/results/<date>_<machine>/spaceinvaders/permakey-layers0 \\
        docs/results/<date>_<machine>/spaceinvaders/permakey-kernel3 ... --out DIR

Each folder is a setting folder of experiments/over_seeds.py (``seed<S>/metrics.json``). Every run
in those reports keeps its configuration and its results beside the baselines, which is all an
ablation chart needs, so settings trained in different sessions (and on different machines,
whose run folders are gone) can share one chart. The runs are grouped as evaluate.py groups run
folders (permakey_tf.evaluation.figures.ablation_charts: runs that differ in one model field and
the seed); the charts go to ``DIR/figures/`` and the runs behind each setting, with their
machine, code version and date, to ``DIR/runs.md``. Mixing machines is allowed and said there:
a chart over several machines compares settings and arithmetic at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from permakey_tf.evaluation.figures import ablation_charts  # noqa: E402
from permakey_tf.evaluation.seed_summary import seed_report_paths  # noqa: E402


def load_runs(folders: Sequence[Path]) -> list[dict]:
    """The run entries of every ``seed<S>/metrics.json`` under the setting folders, each with the
    report's machine, commit and creation date added (``report_machine``, ...)."""
    runs = []
    for folder in folders:
        for path in seed_report_paths(folder):
            report = json.loads(path.read_text())
            for run in report.get("runs", []):
                if "config" not in run or "results" not in run:
                    raise ValueError(f"{path} is from an evaluate.py too old to record the runs' configs; "
                                     "evaluate the run again to chart it")
                runs.append({**run, "report": str(path), "report_machine": report.get("machine", "?"),
                             "report_commit": (report.get("commit") or "?")[:7],
                             "report_date": (report.get("created") or "?")[:10]})
    labels = [run["label"] for run in runs]
    if len(set(labels)) != len(labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise ValueError(f"runs {twice} appear in more than one report: give each setting folder once")
    return runs


def runs_table(runs: Sequence[dict]) -> str:
    """Markdown: one row per run (label, seed, F1, fixed-layout F1, machine, code, date)."""
    lines = ["| run | seed | F1 | fixed-layout F1 | machine | code | evaluated |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        noise = next(iter(run["results"]))
        f1 = run["results"][noise]["model"].get("f1")
        fixed = run["results"][noise].get("fixed_layout", {}).get("f1")
        cells = [run["label"], str(run["config"].get("seed", "?")),
                 "-" if f1 is None else f"{f1:.3f}", "-" if fixed is None else f"{fixed:.3f}",
                 run["report_machine"], run["report_commit"], run["report_date"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="setting folders holding seed<S>/metrics.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for figures/ and runs.md")
    args = parser.parse_args(argv)
    try:
        runs = load_runs(args.folders)
    except ValueError as error:
        parser.error(str(error))
    charts = ablation_charts(runs)
    if not charts:
        print("no two settings of these runs differ in one ablation field only "
              "(permakey_tf.evaluation.figures.ABLATION_FIELDS): nothing to chart", file=sys.stderr)
        return 1
    from permakey_tf import viz

    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    for name, chart_args, kwargs in charts:
        viz.plot_ablation(*chart_args, **kwargs, path=str(args.out / "figures" / name))
        print(f"wrote {args.out / 'figures' / name}")
    machines = sorted({run["report_machine"] for run in runs})
    note = f"\n\nMachines: {', '.join(machines)}" + (" (mixed: settings and arithmetic differ at once)"
                                                     if len(machines) > 1 else "")
    (args.out / "runs.md").write_text(runs_table(runs) + note + "\n")
    print(runs_table(runs) + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
