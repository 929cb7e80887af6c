"""Train PermaKey (or the Transporter baseline) on Atari frames.

    python train.py --game spaceinvaders                  # the paper's experiment
    python train.py --game spaceinvaders --preset quick   # sized for ~15 minutes on an idle 2-core CPU
    python train.py --game spaceinvaders --preset quick --time-limit 10   # stop by 10 minutes
    python train.py --resume runs/spaceinvaders/permakey/20260101-120000
    python train.py --export-only runs/spaceinvaders/permakey/20260101-120000

Each run writes a folder LOGDIR/<game>/<model>/<name or timestamp>/ with config.json, tensorboard/,
checkpoints/best.keras, backup/ (resume state) and export/<version>/ (a TF Serving SavedModel);
docs/TRAINING.md describes it. Flags are checked before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from permakey_tf import console
from permakey_tf.config import NOISE_MODES
from permakey_tf.models.registry import MODELS
from permakey_tf.training import distribute, run_flags, runs
from permakey_tf.training.run_config import ConfigError, RunConfig
from permakey_tf.training.trainer import (  # noqa: F401  (the exit codes are train.py's too)
    EXIT_BAD_FLAGS, EXIT_BUSY, EXIT_CORRUPT, EXIT_INTERRUPTED, EXIT_NON_FINITE, export_run, train)


def build_parser() -> argparse.ArgumentParser:
    presets = "; ".join(f"{name}: {p.description}" for name, p in run_flags.PRESET_TABLE.items())
    parser = argparse.ArgumentParser(
        prog="train.py",
        description=(
            "Train PermaKey or the Transporter baseline on Atari frames, with TensorBoard logs, "
            "the best checkpoint, resumable backups and a TF Serving SavedModel. Every flag "
            "left out takes its value from --preset (default: the paper's settings)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--game", help=f"Atari game (dataset config); one of: {', '.join(run_flags.valid_games())}. "
        "Default spaceinvaders.")
    add("--model", choices=MODELS, help="Model to train. Default permakey.")
    add("--noise", choices=NOISE_MODES,
        help="Noisy-Atari distractor bars drawn over every frame. Default none.")
    add("--num-keypoints", type=int, metavar="K",
        help="Number of keypoints K (>= 1). Default: the authors' K for the game "
        "(spaceinvaders 25, mspacman 7, ...).")
    add("--layers", metavar="I,J",
        help="PermaKey: encoder layers (0 = first) that get a local spatial prediction network, "
        "comma-separated. Default 0,1 (paper).")
    add("--patch-size", type=int, metavar="P",
        help="PermaKey: side p of the cells the local spatial prediction networks predict from "
        "their 8 neighbours (the paper's kernel-size ablation). Default 2 (paper).")
    add("--set", action="append", metavar="FIELD=VALUE", dest="model_options",
        help="Set any field of the model's config dataclass (PermaKeyConfig / TransporterConfig; "
        "their docstrings list them), e.g. --set keypoint_reduction=marginal --set "
        "keypoint_sigma=0.05. Repeatable; applied after --preset and the flags above.")
    add("--epochs", type=int, help="Maximum epochs (early stopping may end sooner). Default 100.")
    add("--batch-size", type=int,
        help="Global batch size (split over replicas). Default 32 PermaKey, 64 Transporter.")
    add("--train-frames", type=int,
        help="Training frames to generate and use (the dataset is built with this size on first "
        "use). Default 85000.")
    add("--seed", type=int, help="Seed for weights, data order, noise and VAE sampling. Default 0.")
    add("--data-dir", help="TensorFlow Datasets directory (default: TFDS's, ~/tensorflow_datasets).")
    add("--logdir", help="Root folder of run folders. Default runs.")
    add("--name", help="Run folder name (default: UTC timestamp). Needed for --distribute multiworker.")
    add("--precision", choices=run_flags.PRECISIONS,
        help="Keras dtype policy; losses stay float32. auto = time float32 and bfloat16 matrix "
        "products here and take the faster. Default float32 (quick preset: auto).")
    add("--jit", action=argparse.BooleanOptionalAction,
        help="XLA-compile the train step (--no-jit: graph mode, faster on CPU). Default off.")
    add("--distribute", choices=run_flags.DISTRIBUTE_MODES,
        help="none; mirrored = MirroredStrategy over all local devices; multiworker = "
        "MultiWorkerMirroredStrategy configured by the TF_CONFIG environment variable. Default none.")
    add("--resume", nargs="?", const="latest", metavar="RUN_DIR",
        help="Continue an interrupted run from its last completed epoch (weights, optimizer "
        "states, LR schedule, data order). Without RUN_DIR: the run named by --name, else the "
        "newest run under LOGDIR/GAME/MODEL. Only --epochs may change.")
    add("--preset", choices=run_flags.PRESETS, help=f"Settings bundle. {presets}. Default paper.")
    add("--time-limit", type=float, metavar="MINUTES",
        help="Stop training at the last epoch boundary before MINUTES of training (the next epoch "
        "is assumed as long as the longest so far); the run exports as usual and --resume "
        "continues it. Not part of the run's config; allowed with --resume. Default: none.")
    add("--export-only", metavar="RUN_DIR",
        help="Do not train: export RUN_DIR/checkpoints/best.keras as a new SavedModel version "
        "under RUN_DIR/export/.")
    return parser  # no flag has a default here: None means "not given" (presets fill it in)


# ----------------------------------------------------------------------------- checks (no TF)


def _resolve(args, parser) -> tuple[RunConfig, Path, bool]:
    """(config, run_dir, resuming); parser.error() (exit 2) on anything wrong."""
    flags = {k: v for k, v in vars(args).items() if k not in ("resume", "export_only", "time_limit")}
    if args.time_limit is not None and not args.time_limit > 0:
        parser.error(f"--time-limit must be > 0 minutes, got {args.time_limit}")

    try:
        if args.resume is not None:
            if args.resume != "latest":
                run_dir = Path(args.resume)
            elif args.name is not None:
                probe = run_flags.resolve_config({k: flags.get(k) for k in ("game", "model", "logdir", "name", "preset")})
                run_dir = runs.run_dir_for(probe)
            else:
                probe = run_flags.resolve_config({k: flags.get(k) for k in ("game", "model", "logdir")})
                run_dir = runs.latest_run_dir(probe.train.logdir, probe.game, probe.model)
            config = run_flags.resume_config(run_dir, flags)
            resuming = True
        else:
            config = run_flags.resolve_config(flags)
            run_dir = None
            resuming = False
        if config.train.distribute == "multiworker" and args.time_limit is not None:
            # Each worker would read its own clock and could stop an epoch before the others.
            raise ConfigError("--time-limit does not work with --distribute multiworker (the workers "
                              "could stop at different epochs); use --epochs instead")
        if config.train.distribute == "multiworker":
            distribute.check_tf_config()
        for path, flag, need_write in ((config.train.logdir, "--logdir", True),
                                       (config.data.data_dir, "--data-dir", False)):
            problem = path is not None and runs.check_writable_folder(path, flag, need_write)
            if problem:
                raise ConfigError(problem)
    except ConfigError as error:
        parser.error(str(error))
    return config, run_dir, resuming


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.export_only is not None:
        extra = [f"--{dest.replace('_', '-')}" for dest, value in vars(args).items()
                 if dest != "export_only" and value != parser.get_default(dest)]
        if extra:
            parser.error(f"--export-only RUN_DIR exports the run's best checkpoint with the run's own "
                         f"config and takes no other flag; drop {', '.join(extra)}")
        console.quiet_tensorflow()
        try:
            config = runs.load_config(args.export_only)
        except ConfigError as error:
            parser.error(str(error))
        try:
            with runs.RunLock(args.export_only):
                runs.remove_stale_temporaries(args.export_only)  # a killed export's leftovers
                return export_run(Path(args.export_only), config)
        except runs.RunFolderBusyError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BUSY
    config, run_dir, resuming = _resolve(args, parser)
    console.quiet_tensorflow()
    try:
        return train(config, run_dir, resuming, args.time_limit)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_FLAGS


if __name__ == "__main__":
    sys.exit(main())
