"""Results over seeds: read the report folders of experiments/over_seeds.py and give every cell as
mean ± standard deviation with the worst seed beside it (pure Python over the JSON reports).

A report folder is ``<root>/<game>[-<noise>]/<model>[-<tag>]/`` holding one ``seed<S>/`` folder
per seed with ``metrics.json`` (evaluate.py, one run), optionally ``probe.json`` (probe_state.py)
and ``protocol.json`` (code version, machine, date). Every number of the table is computed from
those files, so a table in the docs can be regenerated and checked.

Conventions: the standard deviation is the sample one (n - 1; "-" for one seed); "worst" is the
lowest value, or the highest where lower is better (the HUD and border shares of the placement
table), and names its seed; NaN values (a class absent from a seed's test frames) are left out of
that cell and the cell says over how many seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Iterable, Optional, Sequence


# Metrics where a lower value is the better one: their "worst" seed is the highest. The fixed
# layout's F1 is a reference, not a quality: its "worst" is the lowest.
LOWER_IS_BETTER = frozenset({"pointnet_loss_ratio", "hud_share", "border_share"})


@dataclasses.dataclass(frozen=True)
class SeedReport:
    """One seed's evaluation of one setting on one evaluation noise."""

    setting: str  # "<game>[-<noise>]/<model>[-<tag>]"
    seed: int
    eval_noise: str
    split: str
    model: dict  # the model's metrics (evaluate.py's results[noise]["model"])
    fixed_layout: dict
    probe: Optional[dict]  # probe_state.py's keypoints_encoded summary on the same noise, if any
    protocol: dict
    dataset_version: Optional[str] = None  # evaluate.py records it since dataset version 1.3.0


@dataclasses.dataclass(frozen=True)
class Cell:
    """Mean, sample standard deviation and the worst (lowest) seed of one metric."""

    mean: float
    sd: float
    worst: float
    worst_seed: int
    count: int

    def format(self, digits: int = 2) -> str:
        if self.count == 0:
            return "-"
        sd = f" ± {self.sd:.{digits}f}" if self.count > 1 else ""
        return f"{self.mean:.{digits}f}{sd} (worst {self.worst:.{digits}f}, s{self.worst_seed})"


def summarise(values: Sequence[tuple[int, Optional[float]]], lower_is_better: bool = False) -> Cell:
    """(seed, value) pairs -> Cell over the finite values; the worst seed is the lowest value's,
    or the highest's when ``lower_is_better`` (ties: the lower seed)."""
    finite = [(seed, float(v)) for seed, v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return Cell(math.nan, math.nan, math.nan, -1, 0)
    numbers = [v for _, v in finite]
    sign = -1.0 if lower_is_better else 1.0
    worst_seed, worst = min(finite, key=lambda item: (sign * item[1], item[0]))
    sd = statistics.stdev(numbers) if len(numbers) > 1 else math.nan
    return Cell(statistics.fmean(numbers), sd, worst, worst_seed, len(numbers))


def _probe_summary(probe_path: Path, noise: str) -> Optional[dict]:
    if not probe_path.exists():
        return None
    report = json.loads(probe_path.read_text())
    if report.get("noise", noise) != noise:
        return None
    for game in report.get("games", []):
        for label, row in game.get("results", {}).items():
            if label.endswith(":keypoints_encoded"):
                return row.get("summary")
    return None


def seed_report_paths(folder: Path) -> list[Path]:
    """The ``seed<S>/metrics.json`` files of one setting folder, in order; ValueError if none."""
    paths = sorted(Path(folder).glob("seed*/metrics.json"))
    if not paths:
        raise ValueError(f"{folder} holds no seed<S>/metrics.json; run experiments/over_seeds.py first")
    return paths


def load_seed_reports(folders: Iterable[Path]) -> list[SeedReport]:
    """Every ``seed<S>/metrics.json`` under the given setting folders, one SeedReport per
    evaluation noise. A setting is named ``<game>/<model>[-<tag>]``, with its report root
    (``<date>_<machine>``) in front when two folders would share that name. Raises ValueError
    for a folder without seed reports or a metrics.json that holds more than one run."""
    folders = [Path(folder) for folder in folders]
    short = [f"{folder.parent.name}/{folder.name}" for folder in folders]
    reports = []
    for folder, setting in zip(folders, short):
        paths = seed_report_paths(folder)
        if short.count(setting) > 1:  # the same setting under two report roots: keep them apart
            setting = f"{folder.parent.parent.name}/{setting}"
        for path in paths:
            seed = int(path.parent.name[len("seed"):])
            metrics = json.loads(path.read_text())
            if len(metrics["runs"]) != 1:
                raise ValueError(f"{path} holds {len(metrics['runs'])} runs; a seed report holds one")
            protocol_path = path.parent / "protocol.json"
            protocol = json.loads(protocol_path.read_text()) if protocol_path.exists() else {}
            for noise, results in metrics["runs"][0]["results"].items():
                reports.append(SeedReport(
                    setting=setting, seed=seed, eval_noise=noise, split=metrics.get("split", "test"),
                    model=results["model"], fixed_layout=results.get("fixed_layout", {}),
                    probe=_probe_summary(path.parent / "probe.json", noise), protocol=protocol,
                    dataset_version=metrics["runs"][0].get("dataset_version")))
    return reports


def _ratio(report: SeedReport) -> Optional[float]:
    fixed = report.fixed_layout.get("f1")
    return report.model["f1"] / fixed if fixed else None


COLUMNS = (
    ("F1", lambda r: r.model.get("f1")),
    ("fixed-layout F1", lambda r: r.fixed_layout.get("f1")),
    ("F1 / fixed", _ratio),
    ("detection F1", lambda r: r.model.get("detection_f1")),
    ("position probe R²", lambda r: r.model.get("probe_r2")),
    ("RAM probe (agent loc.)", lambda r: (r.probe or {}).get("agent_localization")),
)


def group_reports(reports: Sequence[SeedReport]) -> dict[tuple[str, str, str], list[SeedReport]]:
    """(setting, evaluation noise, split) -> that setting's seed reports, seeds in order."""
    groups: dict = {}
    for report in sorted(reports, key=lambda r: (r.setting, r.eval_noise, r.split, r.seed)):
        groups.setdefault((report.setting, report.eval_noise, report.split), []).append(report)
    return groups


def class_cells(reports: Sequence[SeedReport], prefix: str = "recall_class/",
                lower_is_better: bool = False) -> dict[str, Cell]:
    """Class name -> Cell of the model's ``<prefix><class>`` values (``recall_class/``: targets
    found; ``coverage_class/``: every recorded object of the class under a keypoint)."""
    names = sorted({k[len(prefix):] for r in reports for k in r.model if k.startswith(prefix)})
    return {name: summarise([(r.seed, r.model.get(prefix + name)) for r in reports], lower_is_better)
            for name in names}


def _provenance(reports: Sequence[SeedReport]) -> str:
    commits = sorted({(r.protocol.get("commit") or "?")[:7] + ("+" if r.protocol.get("uncommitted_changes") else "")
                      for r in reports})
    machines = sorted({r.protocol.get("machine", "?") for r in reports})
    dates = sorted({(r.protocol.get("steps", {}).get("evaluate", {}).get("finished") or "?")[:10] for r in reports})
    versions = sorted({r.dataset_version or "?" for r in reports})
    data = f"; data {', '.join(versions)}" if versions != ["?"] else ""  # "?": a seed from before 1.3.0
    return f"{', '.join(commits)}; {', '.join(machines)}; {', '.join(dates)}{data}"


def format_seeds_table(reports: Sequence[SeedReport], digits: int = 2) -> str:
    """A markdown table: one row per (setting, evaluation noise, split), every cell mean ± sd
    (worst value and its seed), then the per-class recalls and the code / machine / date."""
    header = ["setting", "eval noise", "split", "seeds", *[name for name, _ in COLUMNS],
              "recall per class", "code; machine; date"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (setting, noise, split), group in group_reports(reports).items():
        cells = [summarise([(r.seed, read(r)) for r in group]).format(digits) for _, read in COLUMNS]
        classes = "; ".join(f"{name} {cell.format(digits)}" for name, cell in class_cells(group).items())
        seeds = " ".join(str(r.seed) for r in group)
        lines.append("| " + " | ".join([setting, noise, split, seeds, *cells, classes or "-",
                                        _provenance(group)]) + " |")
    return "\n".join(lines)


# Where the keypoints sit: (column, metric of the model's results).
PLACEMENT_COLUMNS = (
    ("on any object", "precision_any"),
    ("on targets", "precision"),
    ("HUD share", "hud_share"),
    ("border share", "border_share"),
)


def format_placement_table(reports: Sequence[SeedReport], digits: int = 2) -> str:
    """A markdown table of where the keypoints sit, one row per (setting, evaluation noise,
    split): K, the shares of keypoints on any recorded object, on targets, on the HUD and near
    the border, then each class's coverage (HUD and static classes included) and, for classes
    that come in rows, each row's coverage (row 0 the top one) and their spread
    (permakey_tf.scoring.rows), all over seeds. Reports written before a measure existed give "-"
    there."""
    header = ["setting", "eval noise", "split", "seeds", "K", *[name for name, _ in PLACEMENT_COLUMNS],
              "coverage per class (every recorded object)", "coverage per row (0 = top); spread"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (setting, noise, split), group in group_reports(reports).items():
        ks = sorted({int(r.model["num_keypoints"]) for r in group if "num_keypoints" in r.model})
        cells = [summarise([(r.seed, r.model.get(key)) for r in group], key in LOWER_IS_BETTER).format(digits)
                 for _, key in PLACEMENT_COLUMNS]
        coverage = "; ".join(f"{name} {cell.format(digits)}"
                             for name, cell in class_cells(group, "coverage_class/").items())
        rows = [f"{name} {cell.format(digits)}" for name, cell in class_cells(group, "coverage_row/").items()]
        rows += [f"{name} spread {cell.format(digits)}"
                 for name, cell in class_cells(group, "row_coverage_spread/", lower_is_better=True).items()]
        lines.append("| " + " | ".join([setting, noise, split, " ".join(str(r.seed) for r in group),
                                        "/".join(map(str, ks)) or "-", *cells, coverage or "-",
                                        "; ".join(rows) or "-"]) + " |")
    return "\n".join(lines)
