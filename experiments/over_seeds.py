"""One setting over several seeds: train, evaluate and probe each seed, then the seeds table.

    python experiments/over_seeds.py --game pong                      # PermaKey, quick, seeds 0 1 2
    python experiments/over_seeds.py --game spaceinvaders --model transporter --noise vertical
    python experiments/over_seeds.py --game pong --tag lr3e-4 --set learning_rate=3e-4 --split validation

For each seed S, in order (a finished step is not repeated, so the command can be run again after
an interruption and continues where it stopped):
  1. ``train.py --game G --model M --noise N --preset P --seed S [--set ...]`` into
     ``LOGDIR/G/M/<name>_seedS`` (an interrupted run is resumed with ``--resume``);
  2. ``quality_curves.py extract RUN --if-present`` into the seed's report folder: the run's
     per-epoch keypoint quality on its validation frames (``quality_curve.json``), kept beside
     the reports because run folders are not committed (a run without per-epoch quality gets
     none);
  3. ``evaluate.py RUN --split SPLIT --noise none[,N]`` into the same folder;
  4. ``probe_state.py RUN --noise N`` into the same folder (the RAM-state probes, fitted on the
     training split and scored on test; games with RAM annotations only, not with ``--split
     validation``; ``--no-probe`` skips it);
  5. ``protocol.json`` beside them: the code version of the training (git commit, and whether
     the tree had uncommitted changes; each step also names its own), the machine (CPU model and
     vector instruction set), the date, the commands and the wall time of each step.
With two or more seeds, then ``evaluate.py`` over all the seeds' runs at once into
``<setting>/agreement/`` (how closely the seeds place their keypoints on the same frames, and the
paper's Figure 3), with its own ``protocol.json``; repeated only when the seeds change or one was
trained in this call. Seeds trained by separate calls (e.g. in parallel) get it from one more
call with all of them, which finds them finished. The seeds' per-epoch curves side by side are
drawn into ``<setting>/curves/`` at the end (``quality_curves.py table``, every epoch) when a seed
was trained in this call or the folder has none yet.

Report folders: ``REPORTS/<game>[-<noise>]/<model>[-<tag>][-validation]/seed<S>/`` with REPORTS
defaulting to ``docs/results/<UTC date>_<machine>`` (e.g. ``2026-12-06_amd-epyc-avx2``; the newest
such folder that already holds the setting, so a setting continued on a later day stays in one
folder). A run counts as trained when its last backup reached its epochs or stopped early; one
cut short by ``--time-limit`` or a kill is resumed. The seeds table
(``experiments/seeds_table.py``) is printed at the end for the setting's folders. Choose settings
with ``--split validation`` and report the chosen one on ``--split test``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]

from permakey_tf.atomic_files import write_json_atomically
from permakey_tf.training.final_pointnet import FIELDS as FINAL_FIELDS
from permakey_tf.machine import machine_label
from permakey_tf.provenance import provenance
from permakey_tf.evaluation.report import format_seed_agreement
from permakey_tf.evaluation.seed_summary import format_seeds_table, load_seed_reports

sys.path.insert(0, str(ROOT / "experiments"))
from quality_curves import CURVE_FILE, CURVES_FOLDER, table as curves_table  # noqa: E402

NOISES = ("none", "horizontal", "vertical", "both")
# Beside the seed<S> folders: evaluate.py over all the seeds at once (seed agreement, Figure 3).
AGREEMENT_FOLDER = "agreement"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--game", required=True)
    parser.add_argument("--model", default="permakey", choices=("permakey", "transporter"))
    parser.add_argument("--noise", default="none", choices=NOISES,
                        help="bars drawn in training; evaluation measures clean frames and these")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="quick", choices=("paper", "quick", "smoke"))
    parser.add_argument("--tag", default="",
                        help="name of a variant (with --set / --train-arg): run and report folders get it")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE",
                        help="passed to train.py --set (repeatable)")
    parser.add_argument("--train-arg", dest="train_args", action="append", default=[],
                        help="any further train.py argument, e.g. --train-arg=--epochs=12 (repeatable)")
    parser.add_argument("--split", default="test", choices=("validation", "test"),
                        help="split evaluated and probed: validation to choose settings, test to report")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--logdir", default=str(ROOT / "runs" / "seeds"))
    parser.add_argument("--reports", default=None,
                        help="root of the report folders (default docs/results/<UTC date>_<machine>)")
    parser.add_argument("--no-probe", action="store_true", help="skip probe_state.py")
    parser.add_argument("--reuse-joint", metavar="BASE_TAG", default=None,
                        help="copy the finished runs of the setting tagged BASE_TAG ('' = untagged) and "
                             "only apply what acts after joint training (--set pointnet_final_*)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    if args.reuse_joint is not None:
        after = [s for s in args.settings if s.partition("=")[0].strip().replace("-", "_") not in FINAL_FIELDS]
        if after or args.train_args or not args.tag or args.reuse_joint == args.tag:
            parser.error(f"--reuse-joint {args.reuse_joint!r} reuses another setting's joint training: "
                         f"give a new --tag and only --set {'/'.join(FINAL_FIELDS)} (got --set {after}, "
                         f"--train-arg {args.train_args})")
    if args.tag and not all(c.isalnum() or c in "-." for c in args.tag):
        parser.error(f"--tag {args.tag!r}: use letters, digits, '-' and '.' only (it names folders)")
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f"--seeds {args.seeds}: give distinct non-negative seeds")
    # The steps run from the repository root: every path is made absolute against the caller's.
    for name in ("logdir", "reports", "data_dir"):
        if getattr(args, name) is not None:
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    return args


def run_name(args: argparse.Namespace, seed: int) -> str:
    variant = f"{args.preset}-{args.tag}" if args.tag else args.preset
    return f"{variant}_{args.noise}_seed{seed}"


def setting_folder(reports: Path, args: argparse.Namespace) -> Path:
    """``reports/<game>[-<noise>]/<model>[-<tag>][-validation]``: a validation evaluation has its
    own folder, so it never stands in for the test one (or the reverse)."""
    game = args.game if args.noise == "none" else f"{args.game}-{args.noise}"
    model = f"{args.model}-{args.tag}" if args.tag else args.model
    return reports / game / (model if args.split == "test" else f"{model}-{args.split}")


def run_finished(run_dir: Path) -> bool:
    """True when the run trained all its epochs or stopped early (its last backup says so) and
    exported; a run stopped by --time-limit or a kill is not finished (it is resumed)."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
        latest = json.loads((run_dir / "backup" / "latest.json").read_text())["folder"]
        state = json.loads((run_dir / "backup" / latest / "state.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    done = state.get("epoch", 0) >= config["train"]["epochs"] or state.get("callbacks", {}).get(
        "best", {}).get("stopped_early", False)
    return bool(done) and (run_dir / "checkpoints" / "best.keras").exists() and (run_dir / "export").is_dir()


def copy_joint_run(base_dir: Path, run_dir: Path, settings: Sequence[str]) -> None:
    """A copy of the finished run ``base_dir`` at ``run_dir`` (config, checkpoint, resume state and
    TensorBoard history; not its exports or caches) whose config.json has ``settings``
    (``FIELD=VALUE`` of fields that act after joint training) and records where it came from;
    ``train.py --resume run_dir`` then applies them. Where the base run ran a final PointNet
    phase, the copy starts from the checkpoint that phase started from (``checkpoints/joint.keras``)
    and without the phase's record, so the copy's phase starts from the joint training too.
    Refuses an unfinished base run."""
    import shutil

    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.training.final_pointnet import JOINT_CHECKPOINT, RECORD
    from permakey_tf.training.run_flags import parse_model_options

    if not run_finished(base_dir):
        raise SystemExit(f"over_seeds.py: error: --reuse-joint needs the finished run {base_dir}; "
                         f"train it first (over_seeds.py without --reuse-joint)")
    config = json.loads((base_dir / "config.json").read_text())
    tmp = run_dir.with_name(run_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base_dir, tmp, ignore=shutil.ignore_patterns("export", "*.npz", "pointnet_*.json", ".lock"))
    checkpoints = tmp / "checkpoints"
    if (checkpoints / JOINT_CHECKPOINT).exists():  # the base's phase ran: undo it in the copy
        os.replace(checkpoints / JOINT_CHECKPOINT, checkpoints / "best.keras")
        (checkpoints / RECORD).unlink(missing_ok=True)
    config["model_config"].update(parse_model_options(PermaKeyConfig, settings))
    config["train"]["name"] = run_dir.name
    write_json_atomically(tmp / "config.json", config)
    write_json_atomically(tmp / "joint_training_from.json", {"run_dir": str(base_dir)})
    os.replace(tmp, run_dir)


def default_reports(machine: str, folder_of) -> Path:
    """The newest ``docs/results/<date>_<machine>`` that already holds this setting (so a run
    continued on a later day adds to the same folder), else today's."""
    results = ROOT / "docs" / "results"
    for candidate in sorted(results.glob(f"*_{machine}"), reverse=True):
        if folder_of(candidate).is_dir():
            return candidate
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return results / f"{today}_{machine}"


def seed_commands(args: argparse.Namespace, seed: int, run_dir: Path, out: Path) -> list[tuple[str, list[str]]]:
    """(step name, command) in order; training is left out when the run is finished."""
    python = sys.executable
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    steps = []
    if not run_finished(run_dir):
        if (run_dir / "config.json").exists():
            steps.append(("train", [python, str(ROOT / "train.py"), "--resume", str(run_dir)]))
        else:
            steps.append(("train", [
                python, str(ROOT / "train.py"), "--game", args.game, "--model", args.model, "--noise", args.noise,
                "--preset", args.preset, "--seed", str(seed), "--logdir", args.logdir,
                "--name", run_dir.name, *data, *[a for s in args.settings for a in ("--set", s)],
                *args.train_args]))
    steps.append(("curve", [python, str(ROOT / "experiments" / "quality_curves.py"), "extract", str(run_dir),
                            "--out", str(out), "--if-present"]))
    noises = "none" if args.noise == "none" else f"none,{args.noise}"
    steps.append(("evaluate", [python, str(ROOT / "evaluate.py"), str(run_dir), "--out", str(out),
                               "--split", args.split, "--noise", noises, "--no-progress", *data]))
    if not args.no_probe:
        steps.append(("probe", [python, str(ROOT / "probe_state.py"), str(run_dir), "--out", str(out),
                                "--noise", args.noise, "--no-progress", *data]))
    return steps


def has_ram_annotation(game: str) -> bool:
    from permakey_tf.probes import ram_annotations

    try:
        ram_annotations.ram_variables(game)
        return True
    except ram_annotations.NoRamAnnotationError:
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.no_probe and args.split != "test":
        print("probe_state.py scores the test split: probes skipped with --split validation")
        args.no_probe = True
    if not args.no_probe and not has_ram_annotation(args.game):
        print(f"{args.game} has no RAM annotation: probes skipped")
        args.no_probe = True
    machine = machine_label()
    reports = Path(args.reports) if args.reports else default_reports(
        machine, lambda root: setting_folder(root, args))
    folder = setting_folder(reports, args)
    retrained = False
    for seed in args.seeds:
        run_dir = Path(args.logdir) / args.game / args.model / run_name(args, seed)
        out = folder / f"seed{seed}"
        record_path = out / "protocol.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else {"steps": {}}
        if args.reuse_joint is not None and not run_dir.exists() and not args.dry_run:
            base = argparse.Namespace(**{**vars(args), "tag": args.reuse_joint})
            copy_joint_run(run_dir.with_name(run_name(base, seed)), run_dir, args.settings)
        for step, command in seed_commands(args, seed, run_dir, out):
            if step in record["steps"] and step != "train":
                print(f"= seed {seed}: {step} already in {record_path}")
                continue
            print("+ " + " ".join(command), flush=True)
            if args.dry_run:
                continue
            if step == "train":  # a new or resumed model: earlier evaluations are not of it
                record["steps"] = {}
                retrained = True
            code, timing = run_step(command, f"seed {seed}: {step}")
            if code:
                return code
            out.mkdir(parents=True, exist_ok=True)
            # Each step names its own code version: a later step (e.g. the curve, added to a
            # finished seed by a newer checkout) must not pass for the code that trained it.
            current = provenance()
            version = {k: v for k, v in current.items() if k in ("commit", "uncommitted_changes")}
            record["steps"][step] = {"command": command, **timing, **version}
            # The top-level code version is the training's (the seeds table cites it); a step
            # added later by a newer checkout keeps its own version in its step entry only.
            if step == "train" or "commit" not in record:
                record.update(**current)
            record.update(seed=seed, run_dir=str(run_dir), split=args.split)
            write_json_atomically(record_path, record, sort_keys=False)
    if len(args.seeds) >= 2:
        code = agreement_step(args, folder, retrained)
        if code:
            return code
    if not args.dry_run:
        if len(list(folder.glob(f"seed*/{CURVE_FILE}"))) >= 2 and (
                retrained or not (folder / CURVES_FOLDER).exists()):
            print(curves_table(folder, epochs=None, out=None))
        print(format_seeds_table(load_seed_reports([folder])))
        agreement_path = folder / AGREEMENT_FOLDER / "metrics.json"
        if agreement_path.exists():
            for agreement in json.loads(agreement_path.read_text()).get("seed_agreement", []):
                print(format_seed_agreement(agreement))
    return 0


def agreement_step(args: argparse.Namespace, folder: Path, retrained: bool) -> int:
    """evaluate.py over all the seeds' runs together into ``folder/agreement/``: how closely the
    seeds place their keypoints on the same frames, and Figure 3. Skipped when a record of the
    same seeds exists and no seed was trained in this call."""
    out = folder / AGREEMENT_FOLDER
    record_path = out / "protocol.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if not retrained and record.get("seeds") == sorted(args.seeds):
        print(f"= seeds {sorted(args.seeds)}: agreement already in {record_path}")
        return 0
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    noises = "none" if args.noise == "none" else f"none,{args.noise}"
    run_dirs = [str(Path(args.logdir) / args.game / args.model / run_name(args, seed)) for seed in sorted(args.seeds)]
    command = [sys.executable, str(ROOT / "evaluate.py"), *run_dirs, "--out", str(out), "--split", args.split,
               "--noise", noises, "--no-progress", *data]
    print("+ " + " ".join(command), flush=True)
    if args.dry_run:
        return 0
    code, timing = run_step(command, "the seeds' agreement")
    if code:
        return code
    write_json_atomically(record_path, {
        "seeds": sorted(args.seeds), "run_dirs": run_dirs, "split": args.split, "command": command,
        **timing, **provenance()}, sort_keys=False)
    return 0


def run_step(command: list[str], what: str) -> tuple[int, dict]:
    """Runs one step from the repository root: (exit code, {"seconds", "finished"}); a failure is
    reported on stderr with the way to continue."""
    start = time.time()
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        print(f"over_seeds.py: error: {what} failed (exit {result.returncode}); fix the cause and run "
              f"the same command again to continue", file=sys.stderr)
    return result.returncode, {
        "seconds": round(time.time() - start, 1),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


if __name__ == "__main__":
    sys.exit(main())
