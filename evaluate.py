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
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from permakey_tf import metrics  # noqa: E402  (numpy only)
from permakey_tf.config import NOISE_MODES  # noqa: E402
from permakey_tf import runs  # noqa: E402
from permakey_tf.eval_figures import draw_figures, figure_indices  # noqa: E402
from permakey_tf.eval_report import format_results_table, format_summary  # noqa: E402
from permakey_tf.runs import CHECKPOINT, EXPORT_DIR, dataset_arguments  # noqa: E402
from permakey_tf.registry import get_model_spec, register_all_models  # noqa: E402



# The run folder's reader lives in permakey_tf.runs; these names stay importable from here.
NotARunError = runs.NotARunError
Run = runs.RunFolder
inspect_run = runs.read_run_folder


Predictor = Callable[[np.ndarray], dict]


def refuse_refinement_without_error_maps(runs: Sequence[Run]) -> None:
    """--refinement-steps reads PermaKey's keypoints on its error maps: a NotARunError naming every
    other run (Transporter has no error maps), before anything is loaded."""
    others = [str(run.path) for run in runs if run.model != "permakey"]
    if others:
        raise NotARunError(f"--refinement-steps reads PermaKey's keypoints on its error maps; "
                           f"{', '.join(others)} have none (Transporter): evaluate them without it")


def load_predictor(run: Run, source: str = "auto", batch_statistics: bool = False,
                   window_feature_maps: bool = False, refinement_steps: Optional[int] = None) -> Predictor:
    """A function uint8 frames ``[B, 84, 84, 3]`` -> dict of numpy outputs (docs/ARCHITECTURE.md).

    Args:
      run: the run.
      source: "checkpoint" (keras.models.load_model of best.keras), "savedmodel" (the export's
        serving_default signature) or "auto" (the checkpoint when present).
      batch_statistics: normalise with the batch's statistics instead of BatchNorm's moving
        averages (docs/BACKGROUND.md section 10: the moving averages can invert PermaKey's error
        maps early in training). Checkpoint only.
      window_feature_maps: also return ``window_feature_maps_<i>``, the model's
        ``window_feature_maps(frames)`` (the features under the keypoints' windows, for the state
        probes). Checkpoint only.
      refinement_steps: read PermaKey's keypoints with this many mean-shift steps on its error
        maps instead of the run's own ``keypoint_refinement_steps`` (0 = the PointNet's keypoints
        as they are). Checkpoint only.
    """
    import tensorflow as tf

    if refinement_steps is not None:
        refuse_refinement_without_error_maps([run])
    if source == "auto":
        source = "checkpoint" if run.checkpoint is not None else "savedmodel"
    if source == "checkpoint":
        if run.checkpoint is None:
            raise NotARunError(f"{run.path} has no {CHECKPOINT}")
        import keras

        from permakey_tf.checkpoints import unloadable_reason

        register_all_models()
        try:
            model = keras.models.load_model(run.checkpoint, compile=False)
        except Exception as error:  # zip / h5 / config errors all mean the same to the user
            raise NotARunError(
                f"{run.checkpoint} cannot be loaded ({unloadable_reason(run.checkpoint, error)}). "
                "It may be truncated or corrupt: evaluate the exported SavedModel instead "
                "(--source savedmodel), or retrain / resume the run."
            ) from None
        options = dict(get_model_spec(run.model).inference_kwargs)
        if refinement_steps is not None:
            model.config = model.config.replace(keypoint_refinement_steps=int(refinement_steps))

        def outputs(x):
            result = dict(model(x, training=batch_statistics, **options))
            if window_feature_maps:
                for index, features in enumerate(model.window_feature_maps(x)):
                    result[f"window_feature_maps_{index}"] = features
            return result

        step = tf.function(outputs)
        return lambda frames: {k: v.numpy() for k, v in step(tf.convert_to_tensor(frames)).items()}
    if source == "savedmodel":
        if run.saved_model is None:
            raise NotARunError(f"{run.path} has no {EXPORT_DIR}/<version>/saved_model.pb")
        if batch_statistics or window_feature_maps or refinement_steps is not None:
            raise ValueError("--batch-statistics, --refinement-steps and the window feature maps "
                             "need the Keras checkpoint (checkpoints/best.keras), not the SavedModel")
        try:
            loaded = tf.saved_model.load(str(run.saved_model))
            signature = loaded.signatures["serving_default"]
            input_name = next(iter(signature.structured_input_signature[1]))
        except Exception as error:  # protobuf / checksum / missing-file errors
            raise NotARunError(
                f"The SavedModel {run.saved_model} cannot be loaded ({type(error).__name__}: "
                f"{str(error).strip().splitlines()[0][:200]}). It may be corrupt: export it again "
                "with train.py --export-only RUN_DIR, or evaluate the checkpoint (--source checkpoint)."
            ) from None

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
      ram: uint8 ``[N, 128]`` console RAM, None when the dataset version has none.
    """

    frames: np.ndarray
    clean: np.ndarray
    bar_masks: np.ndarray
    objects: metrics.ObjectSet
    episode_ids: np.ndarray
    steps: np.ndarray
    noise: str
    ram: Optional[np.ndarray] = None


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
    frames, clean, masks, episodes, steps, objects, ram = [], [], [], [], [], [], []
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
        if "ram" in batch:
            ram.append(batch["ram"][:count])
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
        ram=np.concatenate(ram) if ram else None,
    )


def dataset_kwargs_for(run: Run, data_dir: Optional[str]) -> dict:
    """The arguments of permakey_tf.data loaders that select the run's dataset."""
    return dataset_arguments(dataclasses.asdict(run.config.data), data_dir)


# ---------------------------------------------------------------------------------- prediction


@dataclasses.dataclass
class Predictions:
    """A model's outputs on an EvalSet: keypoints for all frames, maps for the figure frames
    (:func:`figure_indices`), and error maps for every frame when asked (PermaKey's loss ratio
    needs them)."""

    keypoints_pixels: np.ndarray  # [N, K, 2]
    figure_gaussian_maps: Optional[np.ndarray]  # [F, 84, 84, K]
    figure_error_maps: Optional[np.ndarray]  # [F, 84, 84, L]
    error_maps: Optional[np.ndarray] = None  # [N, 84, 84, L] float16


def predict(predictor: Predictor, frames: np.ndarray, batch_size: int = 32, desc: str = "",
            map_frames: Optional[np.ndarray] = None, progress: bool = True,
            all_error_maps: bool = False) -> Predictions:
    """Runs the predictor over frames in batches, with a progress bar.

    ``map_frames``: indices whose Gaussian and error maps are kept (default
    :func:`figure_indices`; empty for none). ``all_error_maps`` also keeps every frame's error
    maps (float16).
    """
    from tqdm import tqdm

    wanted = figure_indices(len(frames)) if map_frames is None else np.asarray(map_frames, int)
    keypoints, gaussians, figure_errors, errors = [], [], [], []
    for start in tqdm(range(0, len(frames), batch_size), desc=desc, unit="batch", disable=not progress,
                      file=sys.stdout):
        outputs = predictor(frames[start:start + batch_size])
        if "keypoints_pixels" not in outputs:
            raise KeyError(f"the model's outputs lack 'keypoints_pixels' (got {sorted(outputs)})")
        kps = np.asarray(outputs["keypoints_pixels"], np.float64)
        if not np.all(np.isfinite(kps)):
            raise FloatingPointError(f"the model gave NaN/inf keypoints ({desc}); the run diverged")
        keypoints.append(kps)
        if all_error_maps and "error_maps" in outputs:
            errors.append(np.asarray(outputs["error_maps"], np.float16))
        here = wanted[(wanted >= start) & (wanted < start + len(kps))] - start
        if len(here):
            if "gaussian_maps" in outputs:
                gaussians.append(np.asarray(outputs["gaussian_maps"], np.float32)[here])
            if "error_maps" in outputs:
                figure_errors.append(np.asarray(outputs["error_maps"], np.float32)[here])
    return Predictions(
        keypoints_pixels=np.concatenate(keypoints),
        figure_gaussian_maps=np.concatenate(gaussians) if gaussians else None,
        figure_error_maps=np.concatenate(figure_errors) if figure_errors else None,
        error_maps=np.concatenate(errors) if errors else None,
    )


def model_diagnostics(run: Run, predictor: Predictor, frames: np.ndarray, pred: Predictions,
                      args: argparse.Namespace) -> dict:
    """permakey_tf.diagnostics for one model on one evaluation set: the shift-equivariance gain
    (``--shift-px``; 0 skips it) and, for PermaKey, its PointNet loss against its fixed layout's."""
    from permakey_tf import diagnostics

    result = {}
    if args.shift_px > 0:
        def keypoints_of(shifted):
            return predict(predictor, shifted, args.batch_size, map_frames=[], progress=False).keypoints_pixels

        result.update(diagnostics.shift_equivariance_gain(
            keypoints_of, frames, args.shift_px, keypoints=pred.keypoints_pixels))
    if pred.error_maps is not None and len(pred.error_maps) == len(frames):
        from permakey_tf.permakey import pointnet_frame_losses_of_pixels

        result.update(diagnostics.pointnet_loss_ratio(
            pred.keypoints_pixels, pred.error_maps,
            functools.partial(pointnet_frame_losses_of_pixels, config=run.config.model_config)))
    return result


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
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"),
                        help="dataset split to evaluate on")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per model call")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the evaluation noise bars and of the random-points baseline")
    parser.add_argument("--hit-radius", type=float, default=_metric_default("hit_radius"),
                        help="a keypoint within this many pixels of an object's centre hits it")
    parser.add_argument("--box-dilation", type=float, default=_metric_default("box_dilation"),
                        help="a keypoint inside an object's box grown by this many pixels hits it")
    parser.add_argument("--shift-px", type=int, default=4,
                        help="shift-equivariance check: move the frames' content by this many "
                        "pixels in each direction and measure how far the keypoints follow (0 = skip)")
    parser.add_argument("--include-classes", default=None,
                        help="comma-separated object classes to count as targets (default: all "
                        "non-static, non-HUD classes)")
    parser.add_argument("--source", choices=("auto", "checkpoint", "savedmodel"), default="auto",
                        help="load the Keras checkpoint or the exported SavedModel")
    parser.add_argument("--batch-statistics", action="store_true",
                        help="normalise with batch statistics instead of BatchNorm's moving averages")
    parser.add_argument("--refinement-steps", type=int, default=None,
                        help="PermaKey: read the keypoints with this many mean-shift steps on the "
                        "error maps instead of the run's own keypoint_refinement_steps (0 = the "
                        "PointNet's keypoints unrefined, as in the paper); Keras checkpoint only")
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
    if args.refinement_steps is not None:
        if args.refinement_steps < 0:
            parser.error("--refinement-steps must be >= 0 (0 = the PointNet's keypoints unrefined)")
        if args.source == "savedmodel":
            parser.error("--refinement-steps changes the Keras model's readout: use --source checkpoint")
    if not 0 <= args.shift_px < 42:
        parser.error("--shift-px must be between 0 (skip) and 41 pixels")
    from permakey_tf.runs import refuse_unwritable_flag

    refuse_unwritable_flag(parser, args.out, "--out")
    return args


def _metric_default(field: str):
    """The MetricSettings default of one field (for --help)."""
    return {f.name: f.default for f in dataclasses.fields(metrics.MetricSettings)}[field]


def output_folder(out: Optional[str], runs: Sequence[Run], kind: str) -> Path:
    """``out`` if given; else RUN_DIR/<kind> for one run, runs/<kind>/<UTC timestamp> for several."""
    if out is not None:
        return Path(out)
    if len(runs) == 1:
        return runs[0].path / kind
    return Path("runs") / kind / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


class UnknownClassesError(ValueError):
    """--include-classes names a class that a run's game does not have."""


def refuse_unknown_classes(include_classes: Sequence[str], runs: Sequence) -> None:
    """UnknownClassesError naming the classes each run's game does have, before anything loads."""
    from tfds_atari.games import get_game
    from tfds_atari.objects import object_class_names

    for run in runs:
        names = object_class_names(get_game(run.game))
        unknown = sorted({c.lower() for c in include_classes} - {n.lower() for n in names})
        if unknown:
            raise UnknownClassesError(f"--include-classes {','.join(unknown)}: not a class of {run.game}; "
                                      f"its classes are {', '.join(names)}")


def evaluate_runs(args: argparse.Namespace) -> dict:
    """Everything evaluate.py does after parsing flags; returns the metrics.json content."""
    runs = [inspect_run(path) for path in args.run_dirs]  # fail fast, before loading anything
    refinement = getattr(args, "refinement_steps", None)
    if refinement is not None:
        refuse_refinement_without_error_maps(runs)
    settings = metrics.MetricSettings(
        hit_radius=args.hit_radius, box_dilation=args.box_dilation,
        include_classes=tuple(c.strip() for c in args.include_classes.split(","))
        if args.include_classes else None,
    )
    if settings.include_classes:
        refuse_unknown_classes(settings.include_classes, runs)
    out = output_folder(args.out, runs, "eval")
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    eval_sets: dict[tuple, EvalSet] = {}
    entries = []
    for run in runs:
        kwargs = dataset_kwargs_for(run, args.data_dir)
        data_key = (run.game, json.dumps(kwargs, sort_keys=True))
        predictor = load_predictor(run, args.source, args.batch_statistics, refinement_steps=refinement)
        config = run.config.to_dict()
        if refinement is not None:
            config["model_config"]["keypoint_refinement_steps"] = refinement
        elif run.model == "permakey" and (args.source == "savedmodel" or run.checkpoint is None):
            # The SavedModel serves the readout it was exported with, not today's default.
            from permakey_tf.export import exported_refinement_steps

            config["model_config"]["keypoint_refinement_steps"] = exported_refinement_steps(run.saved_model)
        entry = {"label": run.label, "path": str(run.path), "model": run.model, "game": run.game,
                 "config": config, "data_key": data_key, "results": {}, "predictions": {}}
        for noise in args.noise:
            if (data_key, noise) not in eval_sets:
                eval_sets[(data_key, noise)] = load_eval_set(
                    run.game, noise, kwargs, args.max_frames, args.seed, split=args.split,
                    progress=progress)
            data = eval_sets[(data_key, noise)]
            pred = predict(predictor, data.frames, args.batch_size,
                           desc=f"{run.label} (noise {noise})", progress=progress,
                           all_error_maps=get_model_spec(run.model).has_error_maps)
            if pred.keypoints_pixels.shape[1] != run.num_keypoints:
                raise ValueError(
                    f"{run.label}: the model gave {pred.keypoints_pixels.shape[1]} keypoints but "
                    f"config.json says num_keypoints={run.num_keypoints}")
            results = metrics.evaluate_with_baselines(
                pred.keypoints_pixels, data.objects, settings, frames=data.frames,
                bar_masks=data.bar_masks if noise != "none" else None,
                episode_ids=data.episode_ids, steps=data.steps, seed=args.seed)
            results["model"].update(model_diagnostics(run, predictor, data.frames, pred, args))
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
    from permakey_tf import console

    console.quiet_tensorflow()
    import tfds_atari

    try:
        evaluate_runs(args)
    except (NotARunError, UnknownClassesError, tfds_atari.DatasetDamagedError,
            tfds_atari.DatasetNotPreparedError) as error:
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
