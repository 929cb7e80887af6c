"""Evaluate trained keypoint models against the dataset's ground-truth objects (command line).

    python evaluate.py RUN_DIR [RUN_DIR ...] [--data-dir DIR] [--out DIR] [--noise none,vertical]
                       [--max-frames N]

For every run folder (written by train.py, layout in docs/ARCHITECTURE.md) the model is loaded from
``checkpoints/best.keras`` (or, failing that, the SavedModel under ``export/``), run over the test
split of its game, clean and with each Noisy-Atari bar type, and measured with permakey_tf.scoring.metrics:
object recall, class-macro recall, precision on targets and on any object, F1, shares of
keypoints on the HUD / a noise bar / the border, and stability over consecutive frames. Every
number comes with four baselines of the same K computed by the same code: the model's own fixed
layout (each keypoint's mean position, on every frame), random points, a regular grid and
frame-difference blobs.

Runs that differ only by seed are also compared with each other: how far each seed's keypoints
lie from the nearest keypoints of the others on the same frames, beside the same distance for
their fixed layouts and for random points (``seed_agreement`` in metrics.json).

Writes OUT/metrics.json (with the code version and machine it was computed on), prints a table per run and noise type, and draws PNG figures into
OUT/figures: keypoint overlays, the paper's Figure 2 (image / Transporter / PermaKey / error maps),
Figure 4 (keypoint centres and Gaussian windows), Figure 3 (runs that differ only by seed) and
ablation charts (runs that differ only in K, encoder layers, patch size or encoder kernels).

This file only parses flags and wires the library together (permakey_tf.evaluation.predictions
loads the model and the data and predicts; permakey_tf.scoring.metrics measures;
permakey_tf.evaluation.report and .figures print and draw); nothing imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from typing import Optional, Sequence

from permakey_tf.scoring import matching, metrics
from permakey_tf.config import NOISE_MODES
from permakey_tf.evaluation.figures import draw_figures, seed_groups
from permakey_tf.evaluation.report import format_results_table, format_seed_agreement, format_summary
from permakey_tf.evaluation.predictions import (
    EvalSet, UnknownClassesError, load_eval_set, load_predictor, model_diagnostics, output_folder, predict,
    refuse_refinement_without_error_maps, refuse_unknown_classes)
from permakey_tf.models.registry import get_model_spec
from permakey_tf.provenance import provenance
from permakey_tf.scoring.seed_agreement import seed_agreement
from permakey_tf.training.runs import NotARunError, read_run_folder


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
    from permakey_tf.training.runs import refuse_unwritable_flag

    refuse_unwritable_flag(parser, args.out, "--out")
    return args


def _metric_default(field: str):
    """The MetricSettings default of one field (for --help)."""
    return {f.name: f.default for f in dataclasses.fields(matching.MetricSettings)}[field]


def seed_agreements(entries: Sequence[dict], seed: int) -> list[dict]:
    """For every group of runs that differ only by seed and every noise type: how closely the
    seeds place their keypoints on the same frames (permakey_tf.scoring.seed_agreement)."""
    agreements = []
    for group in seed_groups(entries):
        for noise in group[0]["predictions"]:
            keypoints = {f"seed {e['config'].get('seed')}": e["predictions"][noise].keypoints_pixels
                         for e in group}
            agreement = seed_agreement(keypoints, seed=seed).to_dict()
            agreements.append({"runs": [e["label"] for e in group], "noise": noise, **agreement})
    return agreements


def evaluate_runs(args: argparse.Namespace) -> dict:
    """Everything evaluate.py does after parsing flags; returns the metrics.json content."""
    runs = [read_run_folder(path) for path in args.run_dirs]  # fail fast, before loading anything
    refinement = getattr(args, "refinement_steps", None)
    if refinement is not None:
        refuse_refinement_without_error_maps(runs)
    settings = matching.MetricSettings(
        hit_radius=args.hit_radius, box_dilation=args.box_dilation,
        include_classes=tuple(c.strip() for c in args.include_classes.split(","))
        if args.include_classes else None,
    )
    if settings.include_classes:
        refuse_unknown_classes(settings.include_classes, runs)
    out = output_folder(args.out, runs, "eval")
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    from permakey_tf.data import loading  # imports TensorFlow: after the console is quiet

    eval_sets: dict[tuple, EvalSet] = {}
    entries = []
    for run in runs:
        kwargs = run.config.data.dataset_arguments(args.data_dir)
        data_key = (run.game, json.dumps(kwargs, sort_keys=True))
        predictor = load_predictor(run, args.source, args.batch_statistics, refinement_steps=refinement)
        config = run.config.to_dict()
        if refinement is not None:
            config["model_config"]["keypoint_refinement_steps"] = refinement
        elif (get_model_spec(run.model).has_field("keypoint_refinement_steps")
              and (args.source == "savedmodel" or run.checkpoint is None)):
            # The SavedModel serves the readout it was exported with, not today's default.
            from permakey_tf.training.export import exported_refinement_steps

            config["model_config"]["keypoint_refinement_steps"] = exported_refinement_steps(run.saved_model)
        entry = {"label": run.label, "path": str(run.path), "model": run.model, "game": run.game,
                 "config": config, "data_key": data_key, "results": {}, "predictions": {},
                 "dataset_version": loading.dataset_version(run.game, **kwargs)}
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
            results["model"].update(model_diagnostics(
                run, predictor, data.frames, pred, shift_px=args.shift_px, batch_size=args.batch_size))
            entry["results"][noise] = results
            entry["predictions"][noise] = pred
            print()
            print(format_results_table(run.label, noise, results))
        entries.append(entry)

    print()
    print(format_summary(entries))
    agreements = seed_agreements(entries, args.seed)
    for agreement in agreements:
        print()
        print(format_seed_agreement(agreement))
    figures = [] if args.no_figures else draw_figures(entries, eval_sets, out)
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **provenance(),
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
             "dataset_version": e["dataset_version"], "config": e["config"], "results": e["results"]}
            for e in entries
        ],
        "seed_agreement": agreements,
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
