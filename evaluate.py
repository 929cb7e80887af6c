"""Evaluate trained keypoint models against the dataset's ground-truth objects.

    python evaluate.py RUN_DIR [RUN_DIR ...] [--data-dir DIR] [--out DIR] [--noise none,vertical]
                       [--max-frames N]

For every run folder (written by train.py, layout in docs/ARCHITECTURE.md) the model is loaded from
``checkpoints/best.keras`` (or, failing that, the SavedModel under ``export/``), run over the test
split of its game, clean and with each Noisy-Atari bar type, and measured with permakey_tf.metrics:
object recall, class-macro recall, precision on targets and on any object, F1, shares of
keypoints on the HUD / a noise bar / the border, and stability over consecutive frames. Every
number comes with four baselines of the same K computed by the same code: the model's own fixed
layout (each keypoint's mean position, on every frame), random points, a regular grid and
frame-difference blobs.

Writes OUT/metrics.json, prints a table per run and noise type, and draws PNG figures into
OUT/figures: keypoint overlays, the paper's Figure 2 (image / Transporter / PermaKey / error maps),
Figure 4 (keypoint centres and Gaussian windows), Figure 3 (runs that differ only by seed) and
ablation charts (runs that differ only in K, encoder layers, patch size or encoder kernels).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from permakey_tf import metrics  # noqa: E402  (numpy only)

NOISE_MODES = ("none", "horizontal", "vertical", "both")
CHECKPOINT = Path("checkpoints") / "best.keras"
EXPORT_DIR = "export"
CONFIG_FILE = "config.json"
FIGURE_FRAMES = 8
MODEL_TITLES = {"permakey": "PermaKey", "transporter": "Transporter"}
# model_config fields an ablation may vary (x axis label, field).
ABLATION_FIELDS = {
    "num_keypoints": "K",
    "lsp_layers": "encoder layers",
    "patch_size": "patch size p",
    "encoder_kernels": "encoder kernels",
}
TABLE_METRICS = (
    "recall", "recall_class_macro", "precision", "precision_any", "f1", "hud_share", "bar_share",
    "border_share", "jitter_px", "tracking_error_relative",
)
COLUMNS = ("model", *metrics.BASELINE_NAMES)


class NotARunError(ValueError):
    """The folder given is not a run folder written by train.py; the message says what is missing."""


# ------------------------------------------------------------------------------------------ runs


@dataclasses.dataclass(frozen=True)
class Run:
    """A run folder and what it holds.

    Attributes:
      path: the run folder.
      config: config.json as a dict (``model``, ``game``, ``model_config``, ``data``, ``seed``...).
      checkpoint: ``checkpoints/best.keras`` if present.
      saved_model: the newest ``export/<version>`` holding ``saved_model.pb``, if any.
    """

    path: Path
    config: dict
    checkpoint: Optional[Path]
    saved_model: Optional[Path]

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def game(self) -> str:
        return self.config["game"]

    @property
    def label(self) -> str:
        """``<game>/<model>/<name>`` (the last three path parts of a train.py run folder)."""
        return "/".join(self.path.resolve().parts[-3:])

    @property
    def num_keypoints(self) -> int:
        return int(self.config["model_config"]["num_keypoints"])


def inspect_run(path: os.PathLike | str) -> Run:
    """Checks that ``path`` is a run folder; raises NotARunError naming what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise NotARunError(f"{path} is not a run folder: it does not exist or is not a directory")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise NotARunError(
            f"{path} is not a run folder: it has no {CONFIG_FILE}. Pass the folder train.py "
            "created (LOGDIR/<game>/<model>/<name>), which holds config.json and checkpoints/."
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise NotARunError(f"{config_path} is not valid JSON ({error})") from None
    missing = [k for k in ("model", "game", "model_config") if k not in config]
    if missing:
        raise NotARunError(f"{config_path} lacks the fields {missing}; was it written by train.py?")
    if config["model"] not in MODEL_TITLES:
        raise NotARunError(
            f"{config_path} names model {config['model']!r}; evaluate.py knows {sorted(MODEL_TITLES)}"
        )
    checkpoint = path / CHECKPOINT
    versions = sorted(
        (p for p in (path / EXPORT_DIR).glob("*") if (p / "saved_model.pb").is_file()),
        key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
    ) if (path / EXPORT_DIR).is_dir() else []
    saved_model = versions[-1] if versions else None
    if not checkpoint.is_file() and saved_model is None:
        raise NotARunError(
            f"{path} has no trained model: neither {CHECKPOINT} nor {EXPORT_DIR}/<version>/"
            "saved_model.pb exists. Has training finished its first epoch? Export one with "
            "train.py's export option."
        )
    return Run(path, config, checkpoint if checkpoint.is_file() else None, saved_model)


Predictor = Callable[[np.ndarray], dict]


def load_predictor(run: Run, source: str = "auto", batch_statistics: bool = False) -> Predictor:
    """A function uint8 frames ``[B, 84, 84, 3]`` -> dict of numpy outputs (docs/ARCHITECTURE.md).

    Args:
      run: the run.
      source: "checkpoint" (keras.models.load_model of best.keras), "savedmodel" (the export's
        serving_default signature) or "auto" (the checkpoint when present).
      batch_statistics: normalise with the batch's statistics instead of BatchNorm's moving
        averages (REFERENCE.md section 10: the moving averages can invert PermaKey's error
        maps early in training). Checkpoint only.
    """
    import tensorflow as tf

    if source == "auto":
        source = "checkpoint" if run.checkpoint is not None else "savedmodel"
    if source == "checkpoint":
        if run.checkpoint is None:
            raise NotARunError(f"{run.path} has no {CHECKPOINT}")
        import keras

        import permakey_tf.permakey  # noqa: F401  (registers the classes for load_model)
        import permakey_tf.transporter  # noqa: F401

        model = keras.models.load_model(run.checkpoint, compile=False)
        if run.model == "permakey":
            step = tf.function(lambda x: model(x, training=batch_statistics, with_reconstruction=False))
        else:
            step = tf.function(lambda x: model(x, training=batch_statistics))
        return lambda frames: {k: v.numpy() for k, v in step(tf.convert_to_tensor(frames)).items()}
    if source == "savedmodel":
        if run.saved_model is None:
            raise NotARunError(f"{run.path} has no {EXPORT_DIR}/<version>/saved_model.pb")
        if batch_statistics:
            raise ValueError("--batch-statistics needs the Keras checkpoint, not the SavedModel")
        loaded = tf.saved_model.load(str(run.saved_model))
        signature = loaded.signatures["serving_default"]
        input_name = next(iter(signature.structured_input_signature[1]))

        def predict(frames):
            outputs = signature(**{input_name: tf.convert_to_tensor(frames, tf.uint8)})
            return {k: v.numpy() for k, v in outputs.items()}

        return predict
    raise ValueError(f"Unknown model source {source!r}; choose auto, checkpoint or savedmodel")


# ------------------------------------------------------------------------------------------ data


@dataclasses.dataclass
class EvalSet:
    """One game's test frames (clean or noisy) with their ground truth, as numpy arrays.

    Attributes:
      frames: ``[N, 84, 84, 3]`` uint8, what the models see (noise included).
      clean: ``[N, 84, 84, 3]`` uint8 without noise.
      bar_masks: ``[N, 84, 84]`` bool (all False for clean data).
      objects: the frames' objects.
      episode_ids, steps: ``[N]``.
      noise: the noise mode.
    """

    frames: np.ndarray
    clean: np.ndarray
    bar_masks: np.ndarray
    objects: metrics.ObjectSet
    episode_ids: np.ndarray
    steps: np.ndarray
    noise: str


@functools.lru_cache(maxsize=None)
def _class_names_cached(game: str, kwargs_json: str) -> Optional[tuple[str, ...]]:
    return _class_names(game, json.loads(kwargs_json))


def _class_names(game: str, dataset_kwargs: dict) -> Optional[tuple[str, ...]]:
    """The dataset's object class names (label -> name), or None if unavailable."""
    try:
        import tfds_atari

        kwargs = {k: v for k, v in dataset_kwargs.items()
                  if k in ("data_dir", "train_frames", "validation_frames", "test_frames")}
        builder = tfds_atari.get_builder(game, **kwargs)
        return tuple(builder.info.features["objects"]["label"].names)
    except Exception:  # noqa: BLE001 - names only label the per-class recalls
        return None


def load_eval_set(game: str, noise: str, dataset_kwargs: dict, max_frames: Optional[int] = None,
                  noise_seed: int = 0, batch_size: int = 64, split: str = "test",
                  progress: bool = True) -> EvalSet:
    """Reads the split through permakey_tf.data's evaluation pipeline into numpy arrays."""
    from tqdm import tqdm

    from permakey_tf import data
    from permakey_tf.noise import NoiseConfig

    ds = data.load_evaluation(game, split, batch_size=batch_size, seed=noise_seed,
                              noise=NoiseConfig(mode=noise), **dataset_kwargs)
    frames, clean, masks, episodes, steps, objects = [], [], [], [], [], []
    total = 0
    bar = tqdm(desc=f"reading {game} {split} (noise {noise})", unit="frame", total=max_frames,
               disable=not progress, file=sys.stdout)
    for batch in ds.as_numpy_iterator():
        count = len(batch["image"])
        if max_frames is not None:
            count = min(count, max_frames - total)
        for i in range(count):
            n = int(batch["num_objects"][i])
            objects.append({key: batch["objects"][key][i, :n] for key in batch["objects"]})
        frames.append(batch["noisy_image"][:count])
        clean.append(batch["image"][:count])
        masks.append(batch["bar_mask"][:count])
        episodes.append(batch["episode_id"][:count])
        steps.append(batch["step"][:count])
        total += count
        bar.update(count)
        if max_frames is not None and total >= max_frames:
            break
    bar.close()
    if total == 0:
        raise RuntimeError(f"the {split} split of {game} gave no frames")
    return EvalSet(
        frames=np.concatenate(frames), clean=np.concatenate(clean), bar_masks=np.concatenate(masks),
        objects=metrics.ObjectSet.from_frames(
            objects, _class_names_cached(game, json.dumps(dataset_kwargs, sort_keys=True))),
        episode_ids=np.concatenate(episodes), steps=np.concatenate(steps), noise=noise,
    )


def dataset_kwargs_for(run: Run, data_dir: Optional[str]) -> dict:
    """The arguments of permakey_tf.data loaders that select the run's dataset."""
    settings = run.config.get("data", {})
    kwargs = {k: settings[k] for k in ("train_frames", "validation_frames", "test_frames") if k in settings}
    kwargs["data_dir"] = data_dir if data_dir is not None else settings.get("data_dir")
    return kwargs


# ---------------------------------------------------------------------------------- prediction


@dataclasses.dataclass
class Predictions:
    """A model's outputs on an EvalSet: keypoints for all frames, maps for the first few."""

    keypoints_pixels: np.ndarray  # [N, K, 2]
    gaussian_maps: Optional[np.ndarray]  # [F, 84, 84, K]
    error_maps: Optional[np.ndarray]  # [F, 84, 84, L]


def predict(predictor: Predictor, frames: np.ndarray, batch_size: int = 32, desc: str = "",
            keep_maps: int = FIGURE_FRAMES, progress: bool = True) -> Predictions:
    """Runs the predictor over frames in batches, with a progress bar."""
    from tqdm import tqdm

    keypoints, gaussians, errors = [], [], []
    kept = 0
    for start in tqdm(range(0, len(frames), batch_size), desc=desc, unit="batch", disable=not progress,
                      file=sys.stdout):
        outputs = predictor(frames[start:start + batch_size])
        if "keypoints_pixels" not in outputs:
            raise KeyError(f"the model's outputs lack 'keypoints_pixels' (got {sorted(outputs)})")
        kps = np.asarray(outputs["keypoints_pixels"], np.float64)
        if not np.all(np.isfinite(kps)):
            raise FloatingPointError(f"the model gave NaN/inf keypoints ({desc}); the run diverged")
        keypoints.append(kps)
        if kept < keep_maps:
            take = keep_maps - kept
            if "gaussian_maps" in outputs:
                gaussians.append(np.asarray(outputs["gaussian_maps"][:take], np.float32))
            if "error_maps" in outputs:
                errors.append(np.asarray(outputs["error_maps"][:take], np.float32))
            kept += min(take, len(kps))
    return Predictions(
        keypoints_pixels=np.concatenate(keypoints),
        gaussian_maps=np.concatenate(gaussians) if gaussians else None,
        error_maps=np.concatenate(errors) if errors else None,
    )


# ------------------------------------------------------------------------------------- reports


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def format_results_table(label: str, noise: str, results: dict) -> str:
    """One block: rows = metrics, columns = the model and its baselines."""
    header = f"{label}  noise={noise}  frames={int(results['model']['num_frames'])}  " \
             f"K={int(results['model']['num_keypoints'])}"
    widths = [26] + [17] * len(COLUMNS)
    lines = [header, "".join(h.ljust(w) for h, w in zip(("metric", *COLUMNS), widths))]
    for name in TABLE_METRICS:
        if name not in results["model"]:
            continue
        cells = [_fmt(results.get(column, {}).get(name)) for column in COLUMNS]
        lines.append("".join(c.ljust(w) for c, w in zip((name, *cells), widths)))
    return "\n".join(lines)


SHORT_NAMES = {"model": "model", "fixed_layout": "fixed", "random": "random", "grid": "grid",
               "frame_difference": "frame-diff"}


def format_summary(entries: Sequence[dict]) -> str:
    """One line per (run, noise): the model's F1 beside its baselines' F1."""
    head = f"{'run':40} {'game':16} {'noise':10} " + " ".join(
        f"{'F1 ' + SHORT_NAMES[c]:>14}" for c in COLUMNS)
    lines = [head]
    for entry in entries:
        for noise, results in entry["results"].items():
            f1 = " ".join(f"{_fmt(results.get(c, {}).get('f1')):>14}" for c in COLUMNS)
            lines.append(f"{entry['label'][:40]:40} {entry['game']:16} {noise:10} {f1}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- figures


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


_RUN_IDENTITY_IGNORE = ("train.name", "train.logdir", "data.data_dir")


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
            n = min(FIGURE_FRAMES, len(data.frames))
            save(viz.plot_keypoints, f"{slug}_keypoints_{noise}.png", data.frames[:n],
                 pred.keypoints_pixels[:n])
        first_noise = next(iter(entry["predictions"]))
        pred = entry["predictions"][first_noise]
        data = eval_sets[(entry["data_key"], first_noise)]
        sigma = float(entry["config"]["model_config"].get("keypoint_sigma", 0.1))
        maps = pred.gaussian_maps[0] if pred.gaussian_maps is not None else None
        save(viz.plot_gaussian_windows, f"{slug}_figure4_gaussian_windows.png", data.frames[0],
             pred.keypoints_pixels[0], sigma=sigma, gaussian_maps=maps,
             title=f"{entry['label']} (noise {first_noise})")

    # Figure 2 per game and noise: image / Transporter / PermaKey / error maps.
    by_game: dict[tuple, list] = {}
    for entry in entries:
        for noise in entry["predictions"]:
            by_game.setdefault((entry["game"], entry["data_key"], noise), []).append(entry)
    for (game, data_key, noise), group in by_game.items():
        if not any(e["model"] == "permakey" for e in group):
            continue
        group = sorted(group, key=lambda e: (e["model"] != "transporter", e["label"]))
        data = eval_sets[(data_key, noise)]
        c = min(4, len(data.frames))
        rows = {f"{MODEL_TITLES[e['model']]}\n{e['label'].split('/')[-1]}":
                e["predictions"][noise].keypoints_pixels[:c] for e in group}
        permakey = next(e for e in group if e["model"] == "permakey")
        error_maps = permakey["predictions"][noise].error_maps
        layers = permakey["config"]["model_config"].get("lsp_layers", [])
        save(viz.plot_figure2, f"figure2_{game}_{noise}.png", data.frames[:c], rows,
             error_maps[:c] if error_maps is not None else None,
             layer_names=[f"error map\nlayer {l}" for l in layers] if error_maps is not None else None)

    # Figure 3: runs that differ only by seed.
    groups: list[list[dict]] = []
    for entry in entries:
        for group in groups:
            if _same_except([group[0]["config"], entry["config"]], (*_RUN_IDENTITY_IGNORE, "seed")):
                group.append(entry)
                break
        else:
            groups.append([entry])
    for group in groups:
        if len({e["config"].get("seed") for e in group}) < 2:
            continue
        noise = next(iter(group[0]["predictions"]))
        data = eval_sets[(group[0]["data_key"], noise)]
        seeds = {f"seed {e['config'].get('seed')}": e["predictions"][noise].keypoints_pixels[0]
                 for e in group}
        name = group[0]["label"].split("/")
        save(viz.plot_seed_overlay, f"figure3_{name[0]}_{name[1]}_seeds.png", data.frames[0], seeds,
             title=f"{MODEL_TITLES[group[0]['model']]} on {group[0]['game']}: {len(seeds)} seeds")

    # Ablations: runs that differ only in one model_config field (seeds averaged).
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
            noise = next(iter(entry["predictions"]))
            series: dict[str, list] = {"model": [], "fixed_layout": [], "random": []}
            errors: dict[str, list] = {k: [] for k in series}
            for value in values:
                members = [e for e in group if json.dumps(e["config"]["model_config"][field]) == value]
                for key in series:
                    f1s = [e["results"][noise][key]["f1"] for e in members if noise in e["results"]]
                    series[key].append(float(np.nanmean(f1s)) if f1s else math.nan)
                    errors[key].append(float(np.nanstd(f1s)) if len(f1s) > 1 else 0.0)
            title = f"{MODEL_TITLES[entry['model']]} on {entry['game']} (noise {noise})"
            labels = [", ".join(map(str, json.loads(v))) if v.startswith("[") else v for v in values]
            series = {("PermaKey" if k == "model" and entry["model"] == "permakey" else
                       "Transporter" if k == "model" else k.replace("_", " ")): v
                      for k, v in series.items()}
            errors = dict(zip(series, errors.values()))
            save(viz.plot_ablation, f"ablation_{entry['game']}_{entry['model']}_{field}.png", labels,
                 series, errors=errors, ylabel=f"F1 ({axis_label})", title=title)
    return written


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure trained keypoint models against ground-truth objects, beside four "
        "baselines, and draw the paper's figures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders written by train.py (config.json + checkpoints/best.keras "
                        "or export/<version>/)")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory (default: the one the run trained on)")
    parser.add_argument("--out", default=None,
                        help="output folder for metrics.json and figures/ (default: RUN_DIR/eval "
                        "for one run, runs/eval/<UTC timestamp> for several)")
    parser.add_argument("--noise", default=",".join(NOISE_MODES),
                        help="comma-separated noise types to evaluate: none (clean), horizontal, "
                        "vertical, both")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="evaluate only the first N test frames (default: the whole split)")
    parser.add_argument("--split", default="test", help="dataset split to evaluate on")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per model call")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the evaluation noise bars and of the random-points baseline")
    parser.add_argument("--hit-radius", type=float, default=_metric_default("hit_radius"),
                        help="a keypoint within this many pixels of an object's centre hits it")
    parser.add_argument("--box-dilation", type=float, default=_metric_default("box_dilation"),
                        help="a keypoint inside an object's box grown by this many pixels hits it")
    parser.add_argument("--include-classes", default=None,
                        help="comma-separated object classes to count as targets (default: all "
                        "non-static, non-HUD classes)")
    parser.add_argument("--source", choices=("auto", "checkpoint", "savedmodel"), default="auto",
                        help="load the Keras checkpoint or the exported SavedModel")
    parser.add_argument("--batch-statistics", action="store_true",
                        help="normalise with batch statistics instead of BatchNorm's moving averages")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    noises = [n.strip() for n in args.noise.split(",") if n.strip()]
    bad = [n for n in noises if n not in NOISE_MODES]
    if bad or not noises:
        parser.error(f"--noise {args.noise!r}: valid types are {', '.join(NOISE_MODES)}")
    args.noise = noises
    if args.max_frames is not None and args.max_frames < 2:
        parser.error("--max-frames must be >= 2 (stability needs consecutive frames)")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    return args


def _metric_default(field: str):
    """The MetricSettings default of one field (for --help)."""
    return {f.name: f.default for f in dataclasses.fields(metrics.MetricSettings)}[field]


def evaluate_runs(args: argparse.Namespace) -> dict:
    """Everything evaluate.py does after parsing flags; returns the metrics.json content."""
    runs = [inspect_run(path) for path in args.run_dirs]  # fail fast, before loading anything
    if args.out is not None:
        out = Path(args.out)
    elif len(runs) == 1:
        out = runs[0].path / "eval"
    else:
        out = Path("runs") / "eval" / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    settings = metrics.MetricSettings(
        hit_radius=args.hit_radius, box_dilation=args.box_dilation,
        include_classes=tuple(c.strip() for c in args.include_classes.split(","))
        if args.include_classes else None,
    )
    progress = not args.no_progress
    eval_sets: dict[tuple, EvalSet] = {}
    entries = []
    for run in runs:
        kwargs = dataset_kwargs_for(run, args.data_dir)
        data_key = (run.game, json.dumps(kwargs, sort_keys=True))
        predictor = load_predictor(run, args.source, args.batch_statistics)
        entry = {"label": run.label, "path": str(run.path), "model": run.model, "game": run.game,
                 "config": run.config, "data_key": data_key, "results": {}, "predictions": {}}
        for noise in args.noise:
            if (data_key, noise) not in eval_sets:
                eval_sets[(data_key, noise)] = load_eval_set(
                    run.game, noise, kwargs, args.max_frames, args.seed, split=args.split,
                    progress=progress)
            data = eval_sets[(data_key, noise)]
            pred = predict(predictor, data.frames, args.batch_size,
                           desc=f"{run.label} (noise {noise})", progress=progress)
            if pred.keypoints_pixels.shape[1] != run.num_keypoints:
                raise ValueError(
                    f"{run.label}: the model gave {pred.keypoints_pixels.shape[1]} keypoints but "
                    f"config.json says num_keypoints={run.num_keypoints}")
            results = metrics.evaluate_with_baselines(
                pred.keypoints_pixels, data.objects, settings, frames=data.frames,
                bar_masks=data.bar_masks if noise != "none" else None,
                episode_ids=data.episode_ids, steps=data.steps, seed=args.seed)
            entry["results"][noise] = results
            entry["predictions"][noise] = pred
            print()
            print(format_results_table(run.label, noise, results))
        entries.append(entry)

    print()
    print(format_summary(entries))
    figures = [] if args.no_figures else draw_figures(entries, eval_sets, out)
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "split": args.split,
        "max_frames": args.max_frames,
        "noise_seed": args.seed,
        "settings": settings.to_dict(),
        "baselines": {
            "fixed_layout": "each model keypoint's mean position over the evaluation frames, on "
                            "every frame",
            "random": f"K uniform points per frame (seed {args.seed})",
            "grid": "K cell centres of a regular grid, on every frame",
            "frame_difference": "centroids of the K largest blobs of |frame_t - frame_t-1| "
                                "(smoothed, thresholded)",
        },
        "runs": [
            {"run_dir": e["path"], "label": e["label"], "model": e["model"], "game": e["game"],
             "seed": e["config"].get("seed"), "preset": e["config"].get("preset"),
             "num_keypoints": int(e["config"]["model_config"]["num_keypoints"]),
             "config": e["config"], "results": e["results"]}
            for e in entries
        ],
        "figures": figures,
    }
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics.json_ready(report), indent=2) + "\n")
    print(f"\nwrote {path}" + (f" and {len(figures)} figures under {out / 'figures'}" if figures else ""))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        evaluate_runs(args)
    except NotARunError as error:
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
