"""A training run from its RunConfig, step by step: the run folder, data, model, restore, fit,
the final PointNet phase and the SavedModel export (train.py is the command line over it).

:func:`train` returns a process exit code (0, or one of the ``EXIT_*`` codes below); every step
that ends a run early prints why. TensorFlow is imported inside the steps, after train.py has
checked its flags.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from permakey_tf.atomic_files import file_digest
from permakey_tf.models.registry import get_model_spec
from permakey_tf.training import distribute, export_versions, runs
from permakey_tf.training.run_config import RunConfig
from permakey_tf.training.run_data import RunData

EXIT_BAD_FLAGS = 2
EXIT_NON_FINITE = 3
EXIT_CORRUPT = 4
EXIT_BUSY = 5
EXIT_INTERRUPTED = 130
# Training batches (dataset order) a new run's data-dependent initialisation reads.
INITIALISATION_BATCHES = 8


def _build_model(config: RunConfig):
    model = get_model_spec(config.model).model_class(config.model_config)
    model.compile(jit_compile=bool(config.train.jit))
    return model


def _build_all(model, frames) -> None:
    """Creates every variable: the model's (a call) and each optimizer's (before a restore)."""
    from permakey_tf.training.run_state import model_optimizers

    model(frames, training=False)
    for optimizer in model_optimizers(model).values():
        if not optimizer.built:
            optimizer.build(model.trainable_variables)


def _measured_precision(config: RunConfig) -> RunConfig:
    """--precision auto: the faster of float32 and mixed_bfloat16 on this machine."""
    import dataclasses

    from permakey_tf.precision import fastest_policy

    policy, rates = fastest_policy()
    print("Precision auto: matrix products " + ", ".join(
        f"{name} {rate:.0f} GFLOP/s" for name, rate in rates.items()) + f" -> {policy}", flush=True)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, precision=policy))


def _set_precision(precision: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(precision)


class _EndRun(Exception):
    """A step of :func:`train` ended the run before its end; ``code`` is the exit code (the step
    has printed why)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@dataclasses.dataclass
class _RunFolder:
    """Where this process writes: the run folder, or (a non-chief worker) its own subfolder."""

    run_dir: Path
    out_dir: Path
    chief: bool
    new_run: bool  # created by this process: removed again if no training could start
    lock: runs.RunLock  # held to the end of the run


def train(config: RunConfig, run_dir: Path | None, resuming: bool,
          time_limit_minutes: float | None = None) -> int:
    """The whole run, step by step; returns the process exit code."""
    import tensorflow as tf  # noqa: F401  (after the flag checks)

    strategy = distribute.make_strategy(config.train.distribute)  # before any other TF op
    import keras

    from permakey_tf.training import checkpoints

    if config.train.precision == "auto":
        config = _measured_precision(config)
    try:
        folder = _open_run_folder(config, run_dir)
        _set_precision(config.train.precision)
        data = _load_data(config, folder)
        image_frames = data.image_frames(min(config.train.image_frames, data.split_sizes["validation"]))
        quality_set = data.quality_set(config.train.quality_frames) if config.train.quality_frames else None
        # Seeded after the data are ready: building a dataset in this process (or not) must not
        # change the run's weights, VAE samples or first steps.
        keras.utils.set_random_seed(config.seed)
        model = _build_in(strategy, config, image_frames[:1])
        best = checkpoints.BestCheckpointAndEarlyStopping(
            folder.out_dir / runs.CHECKPOINT, patience=config.train.early_stopping_patience)
        initial_epoch = _restore(model, folder, best, resuming, config.train.epochs)
        if initial_epoch == 0:
            model.initialise_from_data(data.statistics_batches(INITIALISATION_BATCHES))
        time_limit = None
        if initial_epoch < config.train.epochs:
            time_limit = _fit(model, config, data, folder, best, initial_epoch, image_frames, quality_set,
                              time_limit_minutes, strategy)
    except _EndRun as end:
        return end.code
    if (folder.chief and getattr(config.model_config, "pointnet_final_steps", 0) > 0
            and _phase_fits_in_time_limit(time_limit, best, config, data, folder.run_dir)):
        _final_pointnet_phase(folder.out_dir, config, data, quality_set)
    if folder.chief:
        return export_run(folder.run_dir, config, skip_if_exported=True)
    return 0


def _open_run_folder(config: RunConfig, run_dir: Path | None) -> _RunFolder:
    """Creates (chief, new run) or finds the run folder, takes its lock and removes what an
    interrupted write left."""
    chief, worker_index = distribute.is_chief_worker() if config.train.distribute == "multiworker" else (True, 0)
    new_run = run_dir is None and chief
    if run_dir is None:
        if chief:
            run_dir = runs.create_run_dir(config)  # writes config.json
        else:  # the chief writes config.json; multiworker runs always have a --name
            run_dir = runs.run_dir_for(config)
    # Non-chief workers take part in every collective (saving reads synchronised variables)
    # but write into their own folder, so that the chief's files are the run's.
    out_dir = run_dir if chief else run_dir / "workers" / str(worker_index)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = runs.RunLock(out_dir).acquire()
    except runs.RunFolderBusyError as error:
        print(f"error: {error}", file=sys.stderr)
        raise _EndRun(EXIT_BUSY) from None
    for path in runs.remove_stale_temporaries(out_dir):
        print(f"Removed {path}, left by an interrupted write.", flush=True)
    print(f"Run folder: {run_dir}" + ("" if chief else f" (worker {worker_index} writes {out_dir})"), flush=True)
    if chief and not new_run:
        _record_new_epoch_count(config, run_dir)
    return _RunFolder(run_dir, out_dir, chief, new_run, lock)


def _record_new_epoch_count(config: RunConfig, run_dir: Path) -> None:
    """A run continued with another ``--epochs`` trains that many: its config.json says so (the
    only field a resume may change that describes the run; --jit and --distribute do not)."""
    saved = runs.load_config(run_dir)
    if saved.train.epochs != config.train.epochs:
        runs.write_config(dataclasses.replace(saved, train=dataclasses.replace(
            saved.train, epochs=config.train.epochs)), run_dir)
        print(f"config.json: epochs {saved.train.epochs} -> {config.train.epochs}.", flush=True)


def _load_data(config: RunConfig, folder: _RunFolder) -> RunData:
    """The run's RunData (the dataset built if missing); a missing or damaged dataset ends the
    run, and a run folder created for it is removed (the same command works again later)."""
    import tfds_atari

    try:
        return RunData(config)
    except (tfds_atari.DatasetDamagedError, tfds_atari.DatasetNotPreparedError) as error:
        print(f"error: {error}", file=sys.stderr)
        if folder.new_run:
            folder.lock.release()
            runs.remove_unused_run_dir(folder.run_dir)
        raise _EndRun(EXIT_CORRUPT if isinstance(error, tfds_atari.DatasetDamagedError) else EXIT_BAD_FLAGS) from None


def _build_in(strategy, config: RunConfig, frames):
    """The compiled model with every variable created, under ``strategy``."""
    with strategy.scope():
        model = _build_model(config)
        _build_all(model, frames)
    if config.train.distribute != "none":
        distribute.skip_symbolic_build(model)
    if config.train.distribute == "multiworker":
        distribute.vector_logs(model)
    return model


def _restore(model, folder: _RunFolder, best, resuming: bool, epochs: int) -> int:
    """The first epoch to train: 0 for a new run; for --resume, the epochs its backup completed
    (the weights, optimizer states and best-checkpoint state restored), or ``epochs`` when it
    had stopped early."""
    from permakey_tf.training import checkpoints, run_state

    backup_dir = folder.out_dir / runs.BACKUP_DIR
    if not resuming:
        if (backup_dir / "latest.json").exists():
            print(f"error: {folder.run_dir} already holds resume state; use --resume", file=sys.stderr)
            raise _EndRun(EXIT_BAD_FLAGS)
        return 0
    try:
        state = checkpoints.restore_backup(model, backup_dir)
    except checkpoints.CorruptBackupError as error:
        print(f"error: {error}", file=sys.stderr)
        raise _EndRun(EXIT_CORRUPT) from None
    if state is None:
        print(f"{folder.run_dir} has no completed epoch yet: starting it from epoch 1.", flush=True)
        return 0
    best.set_state(state["callbacks"].get("best", {}))
    print(f"Resuming {folder.run_dir} after epoch {state['epoch']} (optimizer step "
          f"{run_state.global_step(model)}).", flush=True)
    if best.stopped_early:
        print("The run had already stopped early; nothing left to train.", flush=True)
        return epochs
    return state["epoch"]


def _callbacks(config: RunConfig, data: RunData, folder: _RunFolder, best, image_frames, quality_set,
               time_limit_minutes: float | None) -> list:
    """The training loop's callbacks, in the order they must run at each epoch's end."""
    import keras

    from permakey_tf.training import callbacks as cb, checkpoints, summaries
    from permakey_tf.scoring.quality import KeypointQuality

    out_dir, backup_dir = folder.out_dir, folder.out_dir / runs.BACKUP_DIR
    callbacks = []
    if config.train.distribute == "none":  # under a strategy the moving averages are kept
        callbacks.append(cb.PreciseBatchNorm(data.statistics_batches(config.train.statistics_batches)))
    restart_step = config.model_config.keypoint_network_restart_step
    if restart_step > 0:
        callbacks.append(cb.RestartKeypointNetwork(restart_step, config.seed))
    callbacks += [
        cb.StopOnNonFiniteLoss(
            kept=f"The last good checkpoint is {out_dir / 'checkpoints' / 'best.keras'} and "
            f"the resume state (last completed epoch) is in {backup_dir}."
        ),
        summaries.ScalarLogger(out_dir / runs.TENSORBOARD_DIR, every_steps=config.train.scalar_every_steps),
        summaries.KeypointImages(out_dir / runs.TENSORBOARD_DIR / "images", image_frames),
    ]
    if quality_set is not None:
        callbacks.append(KeypointQuality(
            out_dir / runs.TENSORBOARD_DIR / "quality", quality_set, stream=sys.stdout if folder.chief else False))
    callbacks.append(best)
    if sys.stdout.isatty():  # the Keras progress bar, placed so that the summary line follows it
        callbacks.append(keras.callbacks.ProgbarLogger())
    callbacks += [
        cb.EpochSummary(config.train.epochs),
        checkpoints.ResumeBackup(backup_dir, stateful={"best": best}),
    ]
    if time_limit_minutes is not None:  # last: its epoch time includes the callbacks above
        callbacks.append(cb.StopAtTimeLimit(60.0 * time_limit_minutes))
    return callbacks


def _fit(model, config: RunConfig, data: RunData, folder: _RunFolder, best, initial_epoch: int, image_frames,
         quality_set, time_limit_minutes: float | None, strategy) -> bool:
    """Trains epochs initial_epoch+1..epochs; returns the --time-limit callback (None without
    one). A non-finite loss, a damaged dataset file or Ctrl-C ends the run with its exit code."""
    import tensorflow as tf

    from permakey_tf.training import callbacks as cb

    epochs = config.train.epochs
    callbacks = _callbacks(config, data, folder, best, image_frames, quality_set, time_limit_minutes)
    time_limit = callbacks[-1] if time_limit_minutes is not None else None
    interactive = sys.stdout.isatty()
    print(f"Training {config.model} on {config.game}: epochs {initial_epoch + 1}..{epochs}, "
          f"{data.steps_per_epoch} steps of {config.train.batch_size} per epoch, "
          f"{strategy.num_replicas_in_sync} replica(s), precision {config.train.precision}, "
          f"{'XLA' if config.train.jit else 'graph mode'}.", flush=True)
    start = time.time()
    try:
        model.fit(
            data.training(initial_epoch, epochs),
            validation_data=data.validation(),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=data.steps_per_epoch,
            shuffle=False,  # the pipelines shuffle, with per-epoch seeds
            callbacks=callbacks,
            verbose=1 if interactive else 0,
        )
    except cb.NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise _EndRun(EXIT_NON_FINITE) from None
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        first_line = str(error).strip().splitlines()[0][:300]
        print(f"error: reading the dataset failed ({type(error).__name__}: {first_line}). Its "
              f"files in {data.data_dir} are damaged; rebuild them (they are moved aside, not "
              f"deleted) with\n  {data.rebuild_command}\nthen continue this run with "
              f"--resume {folder.run_dir}", file=sys.stderr, flush=True)
        raise _EndRun(EXIT_CORRUPT) from None
    except KeyboardInterrupt:
        print(f"\nInterrupted. Continue with: python train.py --resume {folder.run_dir}", file=sys.stderr)
        raise _EndRun(EXIT_INTERRUPTED) from None
    print(f"Training took {time.time() - start:.0f}s; best validation loss {best.best:.5g} at "
          f"epoch {best.best_epoch}.", flush=True)
    if _stopped_by(time_limit, best):
        print(f"Stopped by --time-limit after epoch {time_limit.stopped_after_epoch} of {epochs}; "
              f"continue with: python train.py --resume {folder.run_dir}", flush=True)
    return time_limit


def _stopped_by(time_limit, best) -> bool:
    return time_limit is not None and time_limit.stopped_after_epoch is not None and not best.stopped_early


# The final PointNet phase's time per step, in joint training steps, generously: the quick
# preset's 600 steps (with the error maps of 3,008 frames) took 0.3 of a 375-step epoch's time on
# a 2-core AVX2 machine; this estimate says 0.5.
PHASE_STEP_IN_JOINT_STEPS = 0.5 * 375 / 600


def _phase_fits_in_time_limit(time_limit, best, config: RunConfig, data: RunData, run_dir: Path) -> bool:
    """The final PointNet phase runs after a finished run; under --time-limit only when its
    estimated time (from the longest epoch) is left, so the limit bounds it too."""
    if time_limit is None:
        return True
    if _stopped_by(time_limit, best):
        return False
    estimate = (time_limit.longest_epoch_seconds / data.steps_per_epoch
                * PHASE_STEP_IN_JOINT_STEPS * config.model_config.pointnet_final_steps)
    if estimate <= time_limit.seconds_left():
        return True
    print(f"The final PointNet phase (about {estimate / 60:.1f} min) would run past --time-limit; "
          f"apply it with: python train.py --resume {run_dir}", flush=True)
    return False


def _final_pointnet_phase(out_dir: Path, config: RunConfig, data: RunData, quality_set) -> None:
    """permakey_tf.training.final_pointnet on the run's kept checkpoint, with the run's first training
    frames (dataset order) and seed, the joint and refitted PointNets compared on up to 256
    validation frames (no labels); logs the validation quality of both."""
    from permakey_tf.training import final_pointnet
    from permakey_tf.scoring.quality import format_quality, measure_quality

    batch_size = config.train.batch_size
    frames = config.model_config.pointnet_final_frames
    quality = (lambda model: format_quality(measure_quality(model, quality_set))) if quality_set else None
    start = time.time()
    if final_pointnet.finish_run((out_dir / runs.CHECKPOINT).parent, config.model_config,
                                 data.statistics_batches(-(-frames // batch_size)),
                                 data.image_frames(min(256, data.split_sizes["validation"])), batch_size,
                                 config.seed, log=lambda line: print(line, flush=True), quality=quality):
        print(f"The final PointNet phase took {time.time() - start:.0f}s.", flush=True)


def export_run(run_dir: Path, config: RunConfig | None = None, skip_if_exported: bool = False) -> int:
    """Exports RUN_DIR/checkpoints/best.keras to RUN_DIR/export/<next version>/.

    Each export records the checkpoint's SHA-256 in RUN_DIR/export/exported.json;
    ``skip_if_exported`` (the export at the end of training) adds no version when the newest one
    was made from the same checkpoint (e.g. --resume of a finished run)."""
    import keras

    from permakey_tf.training.export import export_saved_model
    from permakey_tf.models.registry import register_all_models

    register_all_models()

    config = config or runs.load_config(run_dir)
    checkpoint = Path(run_dir) / runs.CHECKPOINT
    if not checkpoint.exists():
        print(f"error: {checkpoint} does not exist (no epoch finished yet?); nothing to export",
              file=sys.stderr)
        return EXIT_CORRUPT
    digest = file_digest(checkpoint)
    export_base = Path(run_dir) / runs.EXPORT_DIR
    held = export_versions.newest_holds(export_base, digest) if skip_if_exported else None
    if held is not None:
        print(f"SavedModel {held} already holds this checkpoint; no new version.", flush=True)
        return 0
    _set_precision(config.train.precision)
    try:
        model = keras.models.load_model(checkpoint, compile=False)
    except Exception as error:  # zip / h5 / config errors all mean the same to the user
        from permakey_tf.training.checkpoints import unloadable_reason

        print(f"error: the checkpoint {checkpoint} cannot be loaded ({unloadable_reason(checkpoint, error)}). "
              "Train again or resume the run.", file=sys.stderr)
        return EXIT_CORRUPT
    target = export_saved_model(model, export_base, image_size=config.model_config.image_size)
    export_versions.record_export(target, digest)
    print(f"SavedModel for TF Serving: {target} (signature serving_default: uint8 frames "
          f"[N, {config.model_config.image_size}, {config.model_config.image_size}, 3]).", flush=True)
    return 0
