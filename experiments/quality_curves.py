"""Per-epoch keypoint quality (validation frames) of runs, kept in their report folders and
compared over seeds.

    # one run's curve into its seed report folder (over_seeds.py does this after training)
    python experiments/quality_curves.py extract RUN_DIR --out REPORTS/pong/permakey-x4/seed0
    # the seeds' curves side by side: a table at chosen epochs and a figure
    python experiments/quality_curves.py table REPORTS/pong/permakey-x4 --epochs 6 12 24

``extract`` writes ``quality_curve.json`` (``{"run_dir", "curve": {metric: {epoch: value}}}``);
``table`` reads ``seed<S>/quality_curve.json`` of a setting folder and writes ``curves/curves.md``
(mean ± sd with the worst seed at each chosen epoch, permakey_tf.evaluation.quality_curve) and
``curves/curves.png`` beside the seed folders. The values are the training-time check on the run's
validation frames (``train.quality_frames`` of them), not the test-split evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from permakey_tf import console, viz
from permakey_tf.atomic_files import write_json_atomically, write_text_atomically
from permakey_tf.evaluation import quality_curve

CURVE_FILE = "quality_curve.json"
CURVES_FOLDER = "curves"


def extract(run_dir: Path, out: Path) -> Path:
    curve = quality_curve.read_quality_curve(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Epochs in training order (sorted as text they would read 1, 10, 11, ..., 2).
    return write_json_atomically(out / CURVE_FILE, {"run_dir": str(run_dir),
                                                    "curve": quality_curve.curve_to_json(curve)},
                                 sort_keys=False)


def load_curves(folder: Path) -> dict[int, quality_curve.Curve]:
    """``{seed: curve}`` from ``folder/seed<S>/quality_curve.json``; ValueError when there is none."""
    curves = {}
    for path in sorted(folder.glob(f"seed*/{CURVE_FILE}")):
        seed = int(path.parent.name[len("seed"):])
        curves[seed] = quality_curve.curve_from_json(json.loads(path.read_text())["curve"])
    if not curves:
        raise ValueError(f"{folder} holds no seed<S>/{CURVE_FILE}; run `quality_curves.py extract` "
                         f"(or experiments/over_seeds.py) first")
    return curves


def table(folder: Path, epochs: list[int] | None, out: Path | None) -> str:
    curves = load_curves(folder)
    if not epochs:
        epochs = sorted(set().union(*[values.keys() for c in curves.values() for values in c.values()]))
    metrics = quality_curve.default_metrics(curves)
    text = (f"Per-epoch keypoint quality on the runs' validation frames, {folder.parent.name}/{folder.name}, "
            f"seeds {' '.join(map(str, sorted(curves)))}: mean ± sd (worst, seed).\n\n"
            + quality_curve.format_curve_table(curves, metrics, epochs) + "\n")
    out = out or folder / CURVES_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "curves.md", text)
    viz.plot_quality_curves(curves, metrics, title=f"{folder.parent.name}/{folder.name}", marks=epochs,
                            path=str(out / "curves.png"))
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("extract", help="one run's curve into a report folder")
    one.add_argument("run_dir", type=Path)
    one.add_argument("--out", type=Path, required=True, help="the seed's report folder")
    one.add_argument("--if-present", action="store_true",
                     help="a run without per-epoch quality is not an error: say so, write nothing")
    many = commands.add_parser("table", help="the seeds' curves of a setting folder, side by side")
    many.add_argument("folder", type=Path, help="<root>/<game>[-<noise>]/<model>[-<tag>] holding seed<S>/")
    many.add_argument("--epochs", type=int, nargs="+", default=None,
                      help="epochs of the table (default: every epoch)")
    many.add_argument("--out", type=Path, default=None, help="default: FOLDER/curves")
    args = parser.parse_args(argv)
    console.quiet_tensorflow()
    try:
        if args.command == "extract":
            try:
                print(f"wrote {extract(args.run_dir, args.out)}")
            except quality_curve.NoQualityEventsError as error:
                if not args.if_present:
                    raise
                print(f"no per-epoch quality kept: {error}")
        else:
            print(table(args.folder, args.epochs, args.out))
    except (FileNotFoundError, ValueError) as error:
        print(f"quality_curves.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
