"""Probe trained keypoint models for the game's state, AtariARI-style (RAM variables, linear probes).

    python probe_state.py RUN_DIR [RUN_DIR ...] [--out DIR] [--data-dir DIR] [--noise none]

For every run folder (train.py's) the model runs over the train / validation / test splits of its
game; one linear classifier per annotated RAM variable (permakey_tf.probes.ram_annotations) is trained
on the train split's representation, early-stopped on validation and scored by weighted F1 on the
test split (permakey_tf.probes.state_probe has the protocol). Representations of each run:
  keypoints            the 2K keypoint coordinates (pixels);
  keypoints_encoded    the same coordinates, each expanded over fixed Gaussian bumps
                       (permakey_tf.probes.representations: no information added, linearly readable);
  keypoints_colours    keypoints_encoded plus the mean colour under each keypoint's window;
  keypoints_features   keypoints_encoded plus the mean of the model's own features under each
                       keypoint's window (PermaKey: its VAE encoder blocks at the LSP layers;
                       Transporter: its feature encoder's output; needs the Keras checkpoint);
  fixed_layout         the run's mean keypoint layout on every frame (holds nothing).
Baselines of each game, computed by the same code: majority (the most common training value),
random_cnn (a randomly initialised encoder of the PermaKey run's shape, flattened and randomly
projected to 256 numbers, the benchmark's RANDOM-CNN) and pixels (21x21x3 block means).
Prints F1 per category and averaged across categories, with the benchmark's published numbers for
the game beside them, and, per run and position variable, how precisely the best single keypoint
coordinate holds it (permakey_tf.probes.coordinate_readout: tracked share, error in byte steps, the F1 of
that one coordinate calibrated); writes OUT/probe.json ("results" and "readouts").

This file parses flags, runs the probes and prints; what it reads comes from the library
(permakey_tf.probes.probe_inputs: splits, representations, readouts; permakey_tf.probes.state_probe: the
probes themselves); nothing imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from typing import Optional, Sequence

from permakey_tf.probes import ram_annotations, representations, state_probe
from permakey_tf.config import NOISE_MODES
from permakey_tf.models.registry import get_model_spec
from permakey_tf.evaluation.predictions import load_predictor, output_folder
from permakey_tf.probes.probe_inputs import load_probe_splits, position_readouts, random_cnn_features, run_representations
from permakey_tf.training.runs import NotARunError, read_run_folder

SUMMARY_COLUMNS = (*ram_annotations.CATEGORIES, "mean_over_categories")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="AtariARI-style linear probes of keypoint models for the game's RAM state.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by train.py")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    parser.add_argument("--out", default=None,
                        help="folder for probe.json (default: RUN_DIR/probe for one run, "
                        "runs/probe/<UTC timestamp> for several)")
    parser.add_argument("--noise", default="none", choices=NOISE_MODES,
                        help="Noisy-Atari bars on every split's frames before the models see them")
    parser.add_argument("--max-train-frames", type=int, default=None,
                        help="probe-train on the first N training frames only (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="probe initialisation, batch order, noise")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per model call")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the random-CNN and pixel baselines (majority is always shown)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    if args.max_train_frames is not None and args.max_train_frames < 64:
        parser.error("--max-train-frames must be >= 64 (one probe batch)")
    from permakey_tf.training.runs import refuse_unwritable_flag

    refuse_unwritable_flag(parser, args.out, "--out")
    return args


def _print_readouts(readouts: dict) -> None:
    if not readouts:
        return
    print("\nbest single keypoint coordinate per position (calibrated on train, test frames; "
          "errors in byte steps):")
    width = max(len(label) for label in readouts) + 2
    print(f"{'run':<{width}}{'variable':<22}{'coordinate':>11}{'corr':>7}{'tracked':>9}"
          f"{'median err':>12}{'exact':>7}{'<=1':>6}{'<=2':>6}{'F1':>7}")
    for label, variables in readouts.items():
        for variable, r in variables.items():
            if "error" in r:
                print(f"{label:<{width}}{variable:<22}  {r['error']}")
                continue
            print(f"{label:<{width}}{variable:<22}{'kp%d.%s' % (r['keypoint'], r['axis']):>11}"
                  f"{r['correlation']:>7.2f}{r['tracked_share']:>9.2f}{r['abs_error_quantiles']['q50']:>12.2f}"
                  f"{r['within']['0']:>7.2f}{r['within']['1']:>6.2f}{r['within']['2']:>6.2f}{r['f1']:>7.3f}")


def _print_table(game: str, rows: dict, kept: dict) -> None:
    header = f"{'representation':<34}" + "".join(f"{c[:14]:>16}" for c in SUMMARY_COLUMNS)
    print(f"\n{game}: {len(kept)} RAM variables probed ({', '.join(kept)})")
    print(header)
    for name, result in rows.items():
        summary = result["summary"]
        print(f"{name:<34}" + "".join(
            f"{summary[c]:>16.3f}" if c in summary else f"{'-':>16}" for c in SUMMARY_COLUMNS))
    published = ram_annotations.published_f1(game)
    if published:
        print("AtariARI published (mean over categories; Anand et al. 2019, Table 2): " +
              ", ".join(f"{method} {value:.2f}" for method, value in published.items()))
    else:
        print("AtariARI published: none for this game")


def probe_runs(args: argparse.Namespace) -> dict:
    runs = [read_run_folder(path) for path in args.run_dirs]
    for run in runs:
        ram_annotations.ram_variables(run.game)  # fail fast: a game without annotation
    out = output_folder(args.out, runs, "probe")
    settings = state_probe.ProbeSettings(seed=args.seed)
    progress = not args.no_progress
    games: dict[str, dict] = {}
    for run in runs:
        kwargs = run.config.data.dataset_arguments(args.data_dir)
        key = json.dumps([run.game, kwargs], sort_keys=True)
        if key not in games:
            splits = load_probe_splits(run.game, kwargs, args.noise, args.seed, args.max_train_frames, progress)
            kept = state_probe.kept_variables(splits.ram["train"], ram_annotations.ram_variables(run.game),
                                              settings.entropy_threshold)
            games[key] = {"game": run.game, "splits": splits, "variables": kept, "readouts": {}, "rows": {
                "majority": state_probe.majority_baseline(splits.ram, kept, splits.test_mask)}}
            if not args.no_baselines:
                pixels = {s: representations.downsampled_pixels(f) for s, f in splits.frames.items()}
                games[key]["rows"]["pixels"] = state_probe.probe_representation(
                    state_probe.ProbeData(pixels, splits.ram, splits.test_mask), kept, settings)
        entry = games[key]
        if not args.no_baselines and "random_cnn" not in entry["rows"] and get_model_spec(run.config.model).random_cnn_from_config:
            features = random_cnn_features(entry["splits"].frames, run.config.model_config, args.seed,
                                           args.batch_size)
            entry["rows"]["random_cnn"] = state_probe.probe_representation(
                state_probe.ProbeData(features, entry["splits"].ram, entry["splits"].test_mask),
                entry["variables"], settings)
        if run.checkpoint is not None:
            predictor = load_predictor(run, "checkpoint", window_feature_maps=True)
        else:
            print(f"{run.label}: no Keras checkpoint, so no keypoints_features row (the SavedModel "
                  "serves keypoints only)")
            predictor = load_predictor(run, "savedmodel")
        features_of_run = run_representations(predictor, entry["splits"].frames, args.batch_size)
        for name, features in features_of_run.items():
            entry["rows"][f"{run.label}:{name}"] = state_probe.probe_representation(
                state_probe.ProbeData(features, entry["splits"].ram, entry["splits"].test_mask),
                entry["variables"], settings)
        entry["readouts"][run.label] = position_readouts(features_of_run["keypoints"], entry["splits"],
                                                         entry["variables"])
    for entry in games.values():
        if not args.no_baselines and "random_cnn" not in entry["rows"]:  # no run with that encoder
            features = random_cnn_features(entry["splits"].frames, None, args.seed, args.batch_size)
            entry["rows"]["random_cnn"] = state_probe.probe_representation(
                state_probe.ProbeData(features, entry["splits"].ram, entry["splits"].test_mask),
                entry["variables"], settings)
        _print_table(entry["game"], entry["rows"], entry["variables"])
        _print_readouts(entry["readouts"])
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "noise": args.noise,
        "settings": dataclasses.asdict(settings),
        "games": [
            {"game": e["game"], "variables": e["variables"],
             "frames": {s: int(len(f)) for s, f in e["splits"].frames.items()},
             "test_frames_kept": int(e["splits"].test_mask.sum()),
             "published": ram_annotations.published_f1(e["game"]), "results": e["rows"],
             "readouts": e["readouts"]}
            for e in games.values()
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out / 'probe.json'}")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from permakey_tf import console

    console.quiet_tensorflow()
    import tfds_atari

    try:
        probe_runs(args)
    except (NotARunError, ram_annotations.NoRamAnnotationError, tfds_atari.DatasetDamagedError,
            tfds_atari.DatasetNotPreparedError) as error:
        print(f"probe_state.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
