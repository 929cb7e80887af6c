"""Per-epoch keypoint quality of a run, read back from TensorBoard, and compared over seeds.

During training ``permakey_tf.scoring.quality.KeypointQuality`` writes ``quality/<metric>`` scalars
(step = completed epochs) to ``RUN_DIR/tensorboard/quality``. This module turns them into a plain
curve, ``{metric: {epoch: value}}``, that a report folder can hold as JSON (the run folders are not
committed), and summarises several seeds' curves at chosen epochs, each cell a
``seed_summary.Cell`` (mean, sample standard deviation, worst seed); ``permakey_tf.viz.plot_quality_curves``
draws them.

Contract: a resumed run appends new event files; when two events give the same metric at the same
epoch, the one written last (by wall time) wins, so an epoch trained again after a resume has its
later value. (Epochs an interrupted attempt reached beyond where the resumed one ended would stay:
train.py resumes from the last backup, which is the last completed epoch, so none do.) Metrics are the KeypointQuality names without the ``quality/`` prefix (``f1``,
``fixed_layout_f1``, ``recall_class/<class>``, ``probe_r2``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from permakey_tf.evaluation.seed_summary import LOWER_IS_BETTER, Cell, summarise

QUALITY_TAG_PREFIX = "quality/"
# The quality writer's folder inside a run folder (permakey_tf.training.trainer).
QUALITY_EVENTS_DIR = Path("tensorboard") / "quality"

Curve = dict[str, dict[int, float]]  # metric -> {completed epochs: value}


class NoQualityEventsError(FileNotFoundError):
    """A run folder without per-epoch quality scalars."""


def read_quality_curve(run_dir: Path | str) -> Curve:
    """``{metric: {epoch: value}}`` from ``run_dir/tensorboard/quality``.

    Raises NoQualityEventsError (a FileNotFoundError) when the run holds no quality scalars (it
    was trained with ``quality_frames`` 0, or the path is not a run folder).
    """
    import tensorflow as tf

    folder = Path(run_dir) / QUALITY_EVENTS_DIR
    paths = sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []
    if not paths:
        raise NoQualityEventsError(
            f"{folder} holds no event files: is {run_dir} a run folder trained with per-epoch "
            f"quality (train.quality_frames > 0)?")
    latest: dict[tuple[str, int], tuple[float, float]] = {}  # (metric, epoch) -> (wall time, value)
    for path in paths:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if not value.tag.startswith(QUALITY_TAG_PREFIX):
                    continue
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else float(value.simple_value)
                key = (value.tag[len(QUALITY_TAG_PREFIX):], int(event.step))
                if key not in latest or event.wall_time >= latest[key][0]:
                    latest[key] = (event.wall_time, number)
    if not latest:
        raise NoQualityEventsError(f"the event files in {folder} hold no quality/* scalars")
    curve: Curve = {}
    for (metric, epoch), (_, number) in sorted(latest.items()):
        curve.setdefault(metric, {})[epoch] = number
    return curve


def curve_to_json(curve: Curve) -> dict[str, dict[str, float]]:
    """JSON-ready: epochs as string keys, in order."""
    return {metric: {str(epoch): value for epoch, value in sorted(values.items())}
            for metric, values in sorted(curve.items())}


def curve_from_json(data: Mapping[str, Mapping[str, float]]) -> Curve:
    """The inverse of :func:`curve_to_json`, epochs in order (JSON files may sort "10" before "2")."""
    return {metric: dict(sorted((int(epoch), float(value)) for epoch, value in values.items()))
            for metric, values in data.items()}


def curve_cells(curves: Mapping[int, Curve], metric: str, epochs: Sequence[int]) -> dict[int, Cell]:
    """Over seeds (``{seed: curve}``): one Cell per epoch of ``metric``; a seed without that epoch
    (or metric) is left out of the cell, and the cell's count says so. The worst seed is the
    lowest, or the highest for the LOWER_IS_BETTER metrics."""
    return {epoch: summarise([(seed, curve.get(metric, {}).get(epoch)) for seed, curve in sorted(curves.items())],
                             lower_is_better=metric in LOWER_IS_BETTER)
            for epoch in epochs}


def format_curve_table(curves: Mapping[int, Curve], metrics: Sequence[str], epochs: Sequence[int],
                       digits: int = 2) -> str:
    """A markdown table, one row per metric, one column per epoch: mean ± sd (worst, seed);
    the LOWER_IS_BETTER metrics are marked "(lower is better)"."""
    lines = ["| metric | " + " | ".join(f"epoch {e}" for e in epochs) + " |", "|---|" + "---|" * len(epochs)]
    for metric in metrics:
        cells = curve_cells(curves, metric, epochs)
        name = f"{metric} (lower is better)" if metric in LOWER_IS_BETTER else metric
        lines.append(f"| {name} | " + " | ".join(cells[e].format(digits) for e in epochs) + " |")
    return "\n".join(lines)


def default_metrics(curves: Mapping[int, Curve]) -> list[str]:
    """The headline metrics then every per-class recall the curves hold."""
    present = set().union(*[curve.keys() for curve in curves.values()]) if curves else set()
    head = [m for m in ("f1", "fixed_layout_f1", "recall", "probe_r2", "shift_gain", "pointnet_loss_ratio")
            if m in present]
    return head + sorted(m for m in present if m.startswith("recall_class/"))
