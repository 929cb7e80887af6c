"""Fault injection and bad input: kills, corrupt files, bad paths, two writers, seeds.

Each test names the failure a user met (or could meet) and checks the fix: a clear message that
names the problem and what to do, and nothing already written lost or overwritten.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

import evaluate  # noqa: E402
import train  # noqa: E402
from permakey_tf.training import runs, run_flags, run_config  # noqa: E402

TINY_DATA = dict(train_frames=40, validation_frames=16, test_frames=16)


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    return env


# ----------------------------------------------------------------------------- one writer


def test_run_lock_refuses_a_second_writer_and_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from permakey_tf.training.runs import RunLock
            lock = RunLock({str(tmp_path)!r}).acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(runs.RunFolderBusyError, match=f"pid {holder.pid}"):
            runs.RunLock(tmp_path).acquire()
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait(timeout=30)
        with runs.RunLock(tmp_path):
            pass
    finally:
        holder.kill()


def test_resume_of_a_run_that_is_being_written_is_refused(tmp_path, capsys):
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "busy"})
    run_dir = runs.create_run_dir(config)
    with runs.RunLock(run_dir):
        assert train.main(["--resume", str(run_dir)]) == train.EXIT_BUSY
        assert train.main(["--export-only", str(run_dir)]) == train.EXIT_BUSY
    err = capsys.readouterr().err
    assert "being written by another process" in err
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "backup").exists()


def test_stale_temporaries_are_removed_and_real_files_kept(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".tmp-123-best.keras").write_bytes(b"")
    (tmp_path / "checkpoints" / "best.keras").write_bytes(b"keep me")
    (tmp_path / "export" / ".tmp-2-999" / "variables").mkdir(parents=True)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "latest.json.tmp").write_text("{")
    (tmp_path / "backup" / "latest.json").write_text("{}")
    removed = runs.remove_stale_temporaries(tmp_path)
    assert len(removed) == 3
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "backup/latest.json", "checkpoints/best.keras"]


# ----------------------------------------------------------------------------- checkpoints


def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_restarted_run_never_replaces_a_better_kept_checkpoint(tmp_path):
    from permakey_tf.training import checkpoints

    path = tmp_path / "checkpoints" / "best.keras"
    first = checkpoints.BestCheckpointAndEarlyStopping(path, patience=None)
    first.set_model(_tiny_model())
    first.on_train_begin()
    first.on_epoch_end(0, {"val_loss": 0.5})
    kept = path.read_bytes()
    assert json.loads(path.with_suffix(".json").read_text())["val_loss"] == 0.5
    # The backup was deleted: a new callback without resume state, a worse first epoch.
    restarted = checkpoints.BestCheckpointAndEarlyStopping(path, patience=None)
    restarted.set_model(_tiny_model())
    restarted.on_train_begin()
    restarted.on_epoch_end(0, {"val_loss": 0.9})
    assert path.read_bytes() == kept
    restarted.on_epoch_end(1, {"val_loss": 0.3})
    assert path.read_bytes() != kept
    assert json.loads(path.with_suffix(".json").read_text()) == {"val_loss": 0.3, "epoch": 2,
                                                                  "metric": "val_loss"}


def test_a_kill_during_a_backup_write_keeps_the_previous_backup(tmp_path, monkeypatch):
    from permakey_tf.training import checkpoints

    model = _tiny_model()
    x, y = np.ones([8, 3]), np.ones([8, 1])
    backup = checkpoints.ResumeBackup(tmp_path / "backup")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[backup])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the weights")

    monkeypatch.setattr(model, "save_weights", killed)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, initial_epoch=1, verbose=0, callbacks=[backup])
    state = checkpoints.restore_backup(_tiny_model(), tmp_path / "backup")
    assert state["epoch"] == 1


def test_a_kill_during_export_leaves_no_version_and_its_debris_is_cleared(tmp_path, monkeypatch):
    import keras

    from permakey_tf.training.export import export_saved_model
    from permakey_tf.models.permakey import PermaKey

    model = PermaKey(run_flags.resolve_config({"preset": "smoke"}).model_config)

    def killed(self, *args, **kwargs):
        Path(args[0]).mkdir(parents=True)
        (Path(args[0]) / "saved_model.pb").write_bytes(b"half")
        raise KeyboardInterrupt("killed while writing the SavedModel")

    archive_class = type(keras.export.ExportArchive())  # the backend's class
    monkeypatch.setattr(archive_class, "write_out", killed)
    with pytest.raises(KeyboardInterrupt):
        export_saved_model(model, tmp_path / "export")
    assert not (tmp_path / "export" / "1").exists()  # TF Serving never sees half a version
    assert runs.remove_stale_temporaries(tmp_path)
    assert not any((tmp_path / "export").iterdir())


# ----------------------------------------------------------------------------- datasets


@pytest.fixture()
def built_pong(tmp_path):
    import tfds_atari

    return tfds_atari.ensure_prepared(tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA))


def _shard(builder, split):
    return Path(builder.data_dir) / builder.info.splits[split].filenames[0]


def test_a_truncated_shard_is_reported_with_the_rebuild_command_and_rebuilt(built_pong, tmp_path):
    import tfds_atari
    from tfds_atari import build

    shard = _shard(built_pong, "train")
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])
    again = tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA)
    with pytest.raises(tfds_atari.DatasetDamagedError) as error:
        tfds_atari.ensure_prepared(again)
    assert "train:" in str(error.value) and "--rebuild" in str(error.value)
    argv = ["--game", "pong", "--data-dir", str(tmp_path),
            *[f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items()]]
    assert build.main(argv) == 1  # without --rebuild it says what is wrong and stops
    assert build.main([*argv, "--rebuild"]) == 0
    assert _shard(again, "train").read_bytes() == original  # same seed, same bytes
    aside = list((tmp_path / "atari_frames-set-aside").iterdir())
    assert len(aside) == 1 and any(p.stat().st_size == len(original) // 2 for p in aside[0].rglob("*train*"))


def test_a_deleted_validation_shard_is_reported(built_pong, tmp_path):
    import tfds_atari

    _shard(built_pong, "validation").unlink()
    with pytest.raises(tfds_atari.DatasetDamagedError, match="validation: missing"):
        tfds_atari.ensure_prepared(tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA))


def test_unreadable_dataset_metadata_is_reported_as_damage_not_a_traceback(built_pong, tmp_path):
    """dataset_info.json overwritten with garbage (issue 34, items 14-15)."""
    import tfds_atari

    (Path(built_pong.data_dir) / "dataset_info.json").write_text("garbage {")
    with pytest.raises(tfds_atari.DatasetDamagedError) as error:
        tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA)
    message = str(error.value)
    assert "cannot be read" in message and "aside" in message and "python -m tfds_atari.build --game pong" in message
    from tfds_atari import build

    argv = ["--game", "pong", "--data-dir", str(tmp_path), *[f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items()]]
    assert build.main(argv) == 1  # the same message, no traceback


@pytest.mark.parametrize("damage", ["truncated train shard", "garbage metadata"])
def test_training_on_damaged_data_leaves_no_run_folder(damage, tmp_path, capsys):
    """The error names the damage and the fix (exit 4) and the run folder it had started is gone,
    so the same command, --name included, works once the data are rebuilt (issue 34, items 12-15)."""
    import tfds_atari

    smoke = {"train_frames": 64, "validation_frames": 16, "test_frames": 16}
    builder = tfds_atari.ensure_prepared(tfds_atari.get_builder("pong", data_dir=str(tmp_path / "data"), **smoke))
    if damage == "truncated train shard":
        shard = _shard(builder, "train")
        shard.write_bytes(shard.read_bytes()[:100])
    else:
        (Path(builder.data_dir) / "dataset_info.json").write_text("garbage {")
    logdir = tmp_path / "runs"
    code = train.main(["--game", "pong", "--preset", "smoke", "--data-dir", str(tmp_path / "data"),
                       "--logdir", str(logdir), "--name", "again"])
    assert code == train.EXIT_CORRUPT
    assert "damaged" in capsys.readouterr().err
    assert not (logdir / "pong" / "permakey" / "again").exists()


def test_a_variant_folder_without_dataset_info_is_set_aside_and_built(built_pong, tmp_path):
    import tfds_atari

    (Path(built_pong.data_dir) / "dataset_info.json").unlink()
    stale = Path(built_pong.data_dir).parent / "incomplete.ABC123_1.0.0"  # a killed build's folder
    (stale / "atari_frames-train.tfrecord-00000-of-00001").parent.mkdir()
    (stale / "atari_frames-train.tfrecord-00000-of-00001").write_bytes(b"half")
    builder = tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA)
    assert not builder.is_prepared()
    rebuilt = tfds_atari.ensure_prepared(builder)
    assert rebuilt.is_prepared() and rebuilt.info.splits["train"].num_examples == 40
    assert (tmp_path / "atari_frames-set-aside").is_dir()
    assert not stale.exists()


# ----------------------------------------------------------------------------- bad paths and flags


@pytest.mark.parametrize("flag", ["--logdir", "--data-dir"])
def test_train_refuses_a_file_where_a_folder_is_needed(flag, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for target, message in ((a_file, "is a file"), (a_file / "below", "lies under")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--preset", "smoke", "--logdir", str(tmp_path / "runs"), flag, str(target)])
        assert exit_info.value.code == train.EXIT_BAD_FLAGS
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flags, message", [
    (["--patch-size", "100"], "patch_size 100 leaves encoder layer 0"),
    (["--layers", "0,0"], "names a layer twice"),
    (["--set", "keypoint_reduction=mean"], "keypoint_reduction must be one of"),
    (["--set", "no_such_field=1"], "expected FIELD=VALUE"),
    (["--set", "learning_rate=-0.001"], "learning_rate must be > 0"),
    (["--set", "learning_rate=0"], "learning_rate must be > 0"),
    (["--set", "lr_decay_steps=0"], "lr_decay_steps must be >= 1"),
    (["--set", "latent_dim=0"], "latent_dim must be >= 1"),
    (["--set", "image_size=64"], "leave image_size at 84"),
    (["--model", "transporter", "--set", "learning_rate=0"], "learning_rate must be > 0"),
])
def test_model_configurations_that_cannot_work_are_refused(flags, message, tmp_path, capsys):
    """Refused before anything is written (issue 34: these used to train, abort or leave a folder)."""
    with pytest.raises(SystemExit) as exit_info:
        train.main([*flags, "--preset", "smoke", "--logdir", str(tmp_path)])
    assert exit_info.value.code == train.EXIT_BAD_FLAGS
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_evaluate_explains_a_corrupt_checkpoint_and_a_corrupt_saved_model(saved_run, capsys):
    checkpoint = saved_run / "checkpoints" / "best.keras"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # truncated
    assert evaluate.main([str(saved_run), "--source", "checkpoint", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded (it is not a complete .keras archive (1000 bytes: truncated" in err
    assert "File not found" not in err  # Keras' own words for a truncated archive mislead
    variables = next((saved_run / "export" / "1" / "variables").glob("variables.data*"))
    data = bytearray(variables.read_bytes())
    data[: min(64, len(data))] = b"\xff" * min(64, len(data))
    variables.write_bytes(bytes(data))
    assert evaluate.main([str(saved_run), "--source", "savedmodel", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "SavedModel" in err and "cannot be loaded" in err and "--export-only" in err


def test_evaluate_refuses_a_bad_split_and_an_output_that_is_a_file(saved_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main([str(saved_run), "--split", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
    a_file = tmp_path / "out.txt"
    a_file.write_text("keep")
    with pytest.raises(SystemExit):
        evaluate.main([str(saved_run), "--out", str(a_file)])
    assert "is a file" in capsys.readouterr().err
    assert a_file.read_text() == "keep"


# ----------------------------------------------------------------------------- determinism


def _first_epoch(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("epoch 1/1"))
    return line.split("|", 1)[1]  # without the epoch's wall time


def test_the_same_seed_trains_the_same_with_and_without_building_the_dataset(tmp_path, capsys):
    args = ["--preset", "smoke", "--epochs", "1", "--logdir", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "tfds"), "--set", "num_keypoints=2"]
    assert train.main([*args, "--name", "builds"]) == 0  # builds the dataset first
    with_build = capsys.readouterr().out
    assert "Building the dataset" in with_build
    assert train.main([*args, "--name", "finds"]) == 0  # finds it built
    without_build = capsys.readouterr().out
    assert "Building the dataset" not in without_build
    assert _first_epoch(with_build) == _first_epoch(without_build)


def test_a_corrupt_config_json_is_named_by_train_and_evaluate(tmp_path, capsys):
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "bad"})
    run_dir = runs.create_run_dir(config)
    (run_dir / "config.json").write_text('{"model": "permakey", "game": ')
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(run_dir)])
    assert exit_info.value.code == train.EXIT_BAD_FLAGS
    assert "is not a valid run config" in capsys.readouterr().err
    assert evaluate.main([str(run_dir)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_export_only_removes_what_a_killed_export_left(saved_run):
    """kill -9 during --export-only leaves export/.tmp-<version>-<pid>; the next --export-only
    removes it (issue 34, item 19) and writes a complete version."""
    stale = saved_run / "export" / ".tmp-2-99999"
    (stale / "variables").mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half written")
    assert train.main(["--export-only", str(saved_run)]) == 0
    assert not stale.exists()
    assert (saved_run / "export" / "2" / "saved_model.pb").exists()


@pytest.mark.parametrize("flags, message", [
    (["--model", "transporter"], "--model 'transporter' (the run has 'permakey')"),
    (["--game", "mspacman"], "--game 'mspacman' (the run has 'pong')"),
    (["--preset", "quick"], "--preset 'quick' (the run has 'smoke')"),
])
def test_resume_refuses_flags_that_contradict_the_run(flags, message, tmp_path, capsys):
    """--resume RUN continues RUN's saved config: a different model, game or preset is a
    conflict, not silently ignored (issue 34, items 7-9)."""
    config = run_flags.resolve_config({"game": "pong", "preset": "smoke", "logdir": str(tmp_path), "name": "r"})
    run_dir = runs.create_run_dir(config)
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(run_dir), *flags])
    assert exit_info.value.code == train.EXIT_BAD_FLAGS
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before
    # The same values as the run's are no conflict (a game written another way included).
    assert run_flags.resume_config(run_dir, {"game": "Pong", "model": "permakey", "preset": "smoke"}).game == "pong"


@pytest.mark.parametrize("flags", [["--epochs", "5", "--batch-size", "4"], ["--resume", "RUN"]])
def test_export_only_takes_no_other_flag(flags, saved_run, capsys):
    """--export-only RUN exports with the run's own config; other flags were silently ignored
    (issue 34, items 10-11)."""
    flags = [str(saved_run) if f == "RUN" else f for f in flags]
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--export-only", str(saved_run), *flags])
    assert exit_info.value.code == train.EXIT_BAD_FLAGS
    err = capsys.readouterr().err
    assert "takes no other flag" in err and flags[0] in err


def test_evaluate_refuses_unknown_include_classes_in_one_line(saved_run, tmp_path, capsys):
    """A class the game does not have is named with the game's classes, before a model or the
    data are loaded and before an output folder is made (issue 34, item 20)."""
    out = tmp_path / "eval_out"
    assert evaluate.main([str(saved_run), "--include-classes", "NoSuchThing", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evaluate.py: error: --include-classes nosuchthing: not a class of spaceinvaders")
    assert "Player" in err and "Alien" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_prepared_dataset_is_read_from_a_folder_without_write_access(built_pong, tmp_path, monkeypatch):
    """A shared, read-only data folder that holds the prepared data is accepted by train.py's flag
    check and read as it is (issue 34, item 16). Root passes every permission bit, so the missing
    write access is simulated for the data folder alone."""
    import tfds_atari

    logdir = tmp_path / "runs"
    logdir.mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):
        path = Path(path)
        read_only = path == tmp_path or tmp_path / "atari_frames" in (path, *path.parents)
        return False if mode == os.W_OK and read_only else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    parser = train.build_parser()
    args = parser.parse_args(["--game", "pong", "--preset", "smoke", "--data-dir", str(tmp_path),
                              "--logdir", str(logdir)])
    config, _, _ = train._resolve(args, parser)  # no "cannot write" refusal
    assert config.data.data_dir == str(tmp_path)
    assert tfds_atari.ensure_prepared(tfds_atari.get_builder("pong", data_dir=str(tmp_path), **TINY_DATA)).is_prepared()


def test_building_where_nothing_can_be_written_says_so(tmp_path, capsys):
    """--data-dir under /proc (writable by permission bits for root) and a file as --data-dir
    give one-line errors, not tracebacks (issue 34, items 17-18)."""
    import tfds_atari
    from tfds_atari import build

    builder = tfds_atari.get_builder("pong", data_dir="/proc/permakey-no-such-dir", **TINY_DATA)
    with pytest.raises(tfds_atari.DatasetNotPreparedError, match="cannot be built in /proc/permakey-no-such-dir"):
        tfds_atari.ensure_prepared(builder)
    a_file = tmp_path / "data.txt"
    a_file.write_text("keep")
    assert build.main(["--game", "pong", "--data-dir", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep"


def test_unknown_top_level_config_keys_are_named(tmp_path):
    """A config.json with a key train.py never writes (a typo, a hand edit) is refused with the
    key named, as unknown keys inside its sections already were (issue 34)."""
    config = run_flags.resolve_config({"game": "pong", "preset": "smoke", "logdir": str(tmp_path), "name": "k"})
    run_dir = runs.create_run_dir(config)
    values = json.loads((run_dir / "config.json").read_text())
    values["epochz"] = 3
    (run_dir / "config.json").write_text(json.dumps(values))
    with pytest.raises(run_config.ConfigError, match=r"Unknown config.json keys \['epochz'\]"):
        runs.load_config(run_dir)
