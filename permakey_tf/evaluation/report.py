"""evaluate.py's console tables: one block per run and noise (metrics x model and baselines)
and a one-line-per-run summary. Pure Python over the results dicts of permakey_tf.scoring.metrics."""

from __future__ import annotations

import math
from typing import Sequence

from permakey_tf.scoring import baselines

TABLE_METRICS = (
    "recall", "recall_class_macro", "recall_class/*", "coverage_class/*", "coverage_row/*",
    "row_coverage_spread/*", "precision", "precision_any", "f1",
    "hud_share", "bar_share", "border_share", "jitter_px", "tracking_error_relative", "probe_r2",
    "probe_r2/*", "shift_gain", "shift_gain_x", "shift_gain_y", "pointnet_loss_ratio",
    "moving_error_coverage", "moving_error_coverage_gain",
    "detection_precision", "detection_recall", "detection_f1", "detection_precision_cap",
)
COLUMNS = ("model", *baselines.BASELINE_NAMES)

def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def _table_rows(results: dict) -> list[str]:
    """TABLE_METRICS with each ``prefix/*`` expanded to the prefix's keys in the model's results."""
    rows = []
    for name in TABLE_METRICS:
        if name.endswith("/*"):
            prefix = name[:-1]
            rows += sorted(k for k in results["model"] if k.startswith(prefix))
        elif name in results["model"]:
            rows.append(name)
    return rows


def format_results_table(label: str, noise: str, results: dict) -> str:
    """One block: rows = metrics, columns = the model and its baselines."""
    header = f"{label}  noise={noise}  frames={int(results['model']['num_frames'])}  " \
             f"K={int(results['model']['num_keypoints'])}"
    widths = [30] + [17] * len(COLUMNS)
    lines = [header, "".join(h.ljust(w) for h, w in zip(("metric", *COLUMNS), widths))]
    for name in _table_rows(results):
        cells = [_fmt(results.get(column, {}).get(name)) for column in COLUMNS]
        lines.append("".join(c.ljust(w) for c, w in zip((name, *cells), widths)))
    return "\n".join(lines)


SHORT_NAMES = {"model": "model", "fixed_layout": "fixed", "random": "random", "grid": "grid",
               "frame_difference": "frame-diff"}


# The model's per-frame diagnostics in the summary (name in the header, key in its results).
SUMMARY_DIAGNOSTICS = (("recall", "recall"), ("detection F1", "detection_f1"), ("border", "border_share"), ("HUD", "hud_share"),
                       ("shift gain", "shift_gain"), ("probe R2", "probe_r2"),
                       ("PN loss/fixed", "pointnet_loss_ratio"))


def format_summary(entries: Sequence[dict]) -> str:
    """One line per (run, noise): the model's F1 beside its baselines' F1, then the model's
    per-frame diagnostics (does it beat its fixed layout, follow shifts, predict positions?)."""
    head = f"{'run':40} {'game':16} {'noise':10} " + " ".join(
        f"{'F1 ' + SHORT_NAMES[c]:>14}" for c in COLUMNS) + " " + " ".join(
        f"{title:>14}" for title, _ in SUMMARY_DIAGNOSTICS)
    lines = [head]
    for entry in entries:
        for noise, results in entry["results"].items():
            f1 = " ".join(f"{_fmt(results.get(c, {}).get('f1')):>14}" for c in COLUMNS)
            own = " ".join(f"{_fmt(results['model'].get(key)):>14}" for _, key in SUMMARY_DIAGNOSTICS)
            lines.append(f"{entry['label'][:40]:40} {entry['game']:16} {noise:10} {f1} {own}")
    return "\n".join(lines)


def format_seed_agreement(agreement: dict) -> str:
    """Block for one group of runs that differ only by seed (``SeedAgreement.to_dict()`` plus
    ``runs`` and ``noise``): the set distance of each pair beside the fixed-layout and random
    references (permakey_tf.scoring.seed_agreement)."""
    labels = agreement["labels"]
    lines = [f"seed agreement, noise {agreement['noise']} ({len(labels)} runs; nearest-keypoint "
             f"distance, px, lower = closer):",
             f"  runs {_fmt(agreement['model'])} (worst pair {_fmt(agreement['worst_pair'])}) | "
             f"their fixed layouts {_fmt(agreement['fixed_layout'])} | random points "
             f"{_fmt(agreement['random'])}"]
    for i, row in enumerate(agreement["pairwise"]):
        lines.append(f"  {labels[i]:>10} " + " ".join(f"{value:7.2f}" for value in row))
    return "\n".join(lines)
