"""evaluate.py's figures: keypoint overlays, the paper's Figures 2-4 and ablation charts.

``draw_figures`` takes evaluate.py's run entries (dicts with ``label``, ``model``, ``game``,
``config`` (RunConfig.to_dict()), ``data_key``, ``results`` and ``predictions`` per noise) and
its evaluation sets; plotting is in permakey_tf.viz.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from permakey_tf.models.registry import get_model_spec

FIGURE_FRAMES = 8
# model_config fields an ablation may vary (x axis label, field).
ABLATION_FIELDS = {
    "num_keypoints": "K",
    "lsp_layers": "encoder layers",
    "patch_size": "patch size p",
    "encoder_kernels": "encoder kernels",
    "encoder_strides": "encoder strides",
}


def figure_indices(num_frames: int, count: int = FIGURE_FRAMES) -> np.ndarray:
    """``count`` frame indices spread evenly over an evaluation set (the figures' frames)."""
    return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int))


def _same_except(configs: Sequence[dict], ignore: Sequence[str]) -> bool:
    def strip(config):
        c = json.loads(json.dumps(config))
        for dotted in ignore:
            parts = dotted.split(".")
            target = c
            for part in parts[:-1]:
                target = target.get(part, {})
            target.pop(parts[-1], None)
        return json.dumps(c, sort_keys=True)

    return len({strip(c) for c in configs}) == 1


# Where a run was written, and the arithmetic it ran in: precision "auto" times both dtypes when
# each run starts and may pick differently for two seeds of one setting on the same machine.
_RUN_IDENTITY_IGNORE = ("train.name", "train.logdir", "data.data_dir", "train.precision")


def seed_groups(entries: Sequence[dict]) -> list[list[dict]]:
    """evaluate.py's run entries grouped by everything but the seed (and where the run was
    written); only groups with at least two different seeds, in the order the runs were given."""
    groups: list[list[dict]] = []
    for entry in entries:
        for group in groups:
            if _same_except([group[0]["config"], entry["config"]], (*_RUN_IDENTITY_IGNORE, "seed")):
                group.append(entry)
                break
        else:
            groups.append([entry])
    return [group for group in groups if len({e["config"].get("seed") for e in group}) >= 2]


def draw_figures(entries: Sequence[dict], eval_sets: dict, out: Path) -> list[str]:
    """Writes the PNG figures; returns their paths (relative to ``out``)."""
    from permakey_tf import viz

    figures = out / "figures"
    written = []

    def save(fig_fn, name, *args, **kwargs):
        path = figures / name
        fig_fn(*args, path=str(path), **kwargs)
        written.append(str(path.relative_to(out)))

    # Per run: keypoint overlays per noise type, Figure 4 on the first clean frame.
    for entry in entries:
        slug = entry["label"].replace("/", "_")
        for noise, pred in entry["predictions"].items():
            data = eval_sets[(entry["data_key"], noise)]
            shown = figure_indices(len(data.frames))
            save(viz.plot_keypoints, f"{slug}_keypoints_{noise}.png", data.frames[shown],
                 pred.keypoints_pixels[shown])
        first_noise = next(iter(entry["predictions"]))
        pred = entry["predictions"][first_noise]
        data = eval_sets[(entry["data_key"], first_noise)]
        sigma = float(entry["config"]["model_config"].get("keypoint_sigma", 0.1))
        maps = pred.figure_gaussian_maps[0] if pred.figure_gaussian_maps is not None else None
        save(viz.plot_gaussian_windows, f"{slug}_figure4_gaussian_windows.png", data.frames[0],
             pred.keypoints_pixels[0], sigma=sigma, gaussian_maps=maps,
             title=f"{entry['label']} (noise {first_noise})")

    # Figure 2 per game and noise: image / Transporter / PermaKey / error maps.
    by_game: dict[tuple, list] = {}
    for entry in entries:
        for noise in entry["predictions"]:
            by_game.setdefault((entry["game"], entry["data_key"], noise), []).append(entry)
    for (game, data_key, noise), group in by_game.items():
        with_maps = [e for e in group if get_model_spec(e["model"]).has_error_maps]
        if not with_maps:
            continue
        group = sorted(group, key=lambda e: (get_model_spec(e["model"]).has_error_maps, e["label"]))
        data = eval_sets[(data_key, noise)]
        every_other = slice(None, None, 2)  # 4 of the 8 figure frames, spread over the split
        shown = figure_indices(len(data.frames))[every_other]
        rows = {f"{get_model_spec(e['model']).title}\n{e['label'].split('/')[-1]}":
                e["predictions"][noise].keypoints_pixels[shown] for e in group}
        error_maps = with_maps[0]["predictions"][noise].figure_error_maps
        layers = with_maps[0]["config"]["model_config"].get("lsp_layers", [])
        save(viz.plot_figure2, f"figure2_{game}_{noise}.png", data.frames[shown], rows,
             error_maps[every_other] if error_maps is not None else None,
             layer_names=[f"error map\nlayer {l}" for l in layers] if error_maps is not None else None)

    # Figure 3: runs that differ only by seed.
    for group in seed_groups(entries):
        noise = next(iter(group[0]["predictions"]))
        data = eval_sets[(group[0]["data_key"], noise)]
        shown = figure_indices(len(data.frames), 4)  # the same frames for every seed
        seeds = {f"seed {e['config'].get('seed')}": e["predictions"][noise].keypoints_pixels[shown]
                 for e in group}
        name = group[0]["label"].split("/")
        save(viz.plot_seed_overlay, f"figure3_{name[0]}_{name[1]}_seeds.png", data.frames[shown], seeds,
             title=f"{get_model_spec(group[0]['model']).title} on {group[0]['game']}: {len(seeds)} seeds")

    # Ablations: runs that differ only in one model_config field (seeds averaged).
    for name, args, kwargs in ablation_charts(entries):
        save(viz.plot_ablation, name, *args, **kwargs)
    return written


def ablation_charts(entries: Sequence[dict]) -> list[tuple[str, tuple, dict]]:
    """The ablation bar charts of a set of runs: for each field of ABLATION_FIELDS, the runs that
    differ only in that field (and the seed) give F1 against the field's values, seeds averaged
    (± their sd), beside the runs' fixed layouts and random points.

    Needs only each entry's ``label``, ``model``, ``game``, ``config`` and ``results`` (noise ->
    name -> metrics; the first noise is charted), so the report files of runs trained in different
    sessions serve as well as the runs (experiments/ablation_from_reports.py).

    Returns:
      ``(file name, args, kwargs)`` per chart for ``viz.plot_ablation``.
    """
    charts = []
    for field, axis_label in ABLATION_FIELDS.items():
        ignore = (*_RUN_IDENTITY_IGNORE, "seed", f"model_config.{field}")
        if field == "num_keypoints":
            ignore = (*ignore, "train.image_frames")
        done = set()
        for entry in entries:
            if entry["label"] in done or field not in entry["config"]["model_config"]:
                continue
            group = [e for e in entries if field in e["config"]["model_config"]
                     and _same_except([entry["config"], e["config"]], ignore)]
            done.update(e["label"] for e in group)
            values = sorted({json.dumps(e["config"]["model_config"][field]) for e in group})
            if len(values) < 2:
                continue
            noise = next(iter(entry["results"]))
            series: dict[str, list] = {"model": [], "fixed_layout": [], "random": []}
            errors: dict[str, list] = {k: [] for k in series}
            for value in values:
                members = [e for e in group if json.dumps(e["config"]["model_config"][field]) == value]
                for key in series:
                    f1s = [_finite(e["results"][noise][key]["f1"]) for e in members if noise in e["results"]]
                    series[key].append(float(np.nanmean(f1s)) if f1s else math.nan)
                    errors[key].append(float(np.nanstd(f1s)) if len(f1s) > 1 else 0.0)
            title = f"{get_model_spec(entry['model']).title} on {entry['game']} (noise {noise})"
            labels = [", ".join(map(str, json.loads(v))) if v.startswith("[") else v for v in values]
            series = {(get_model_spec(entry["model"]).title if k == "model" else k.replace("_", " ")): v
                      for k, v in series.items()}
            errors = dict(zip(series, errors.values()))
            charts.append((f"ablation_{entry['game']}_{entry['model']}_{field}.png", (labels, series),
                           dict(errors=errors, ylabel=f"F1 ({axis_label})", title=title)))
    return charts


def _finite(value) -> float:
    """A metric as a float; None (a report's JSON form of NaN) becomes NaN."""
    return math.nan if value is None else float(value)
