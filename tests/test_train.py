"""train.py end to end (smoke preset, subprocesses) and the training machinery it wires together:
flag checks, run folder, TensorBoard events, best checkpoint, resume, export. The presets alone:
tests/test_run_flags.py; the checkpoint callbacks: tests/test_checkpoints.py; the other callbacks:
tests/test_callbacks.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

import train  # noqa: E402
from permakey_tf.training import runs, run_flags, run_config  # noqa: E402


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env.pop("TF_CONFIG", None)
    return env


def _train_cmd(*args):
    return [sys.executable, str(REPO / "train.py"), *args]


# ----------------------------------------------------------------------------- flags (no TF work)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--game", "spaceinvader"], "Valid games: battlezone"),
        (["--num-keypoints", "0"], "num_keypoints must be >= 1"),
        (["--layers", "0,4"], "lsp_layers [4] do not exist: the encoder has 4 layers"),
        (["--layers", "zero"], "not a comma-separated list"),
        (["--model", "transporter", "--layers", "0"], "Transporter has none"),
        (["--patch-size", "0"], "--patch-size must be >= 1"),
        (["--model", "transporter", "--patch-size", "3"], "Transporter has none"),
        (["--batch-size", "128", "--preset", "smoke"], "larger than the 64 training frames"),
        (["--distribute", "multiworker"], "needs --name"),
        (["--time-limit", "0"], "--time-limit must be > 0 minutes"),
        (["--time-limit", "5", "--distribute", "multiworker", "--name", "x"], "use --epochs instead"),
    ],
)
def test_bad_flags_fail_fast_with_a_clear_message(flags, message, tmp_path, capsys):
    start = time.time()
    with pytest.raises(SystemExit) as exit_info:
        train.main([*flags, "--logdir", str(tmp_path)])
    assert exit_info.value.code == train.EXIT_BAD_FLAGS
    assert message in capsys.readouterr().err
    assert time.time() - start < 2.0, "flag errors must come before any heavy work"
    assert not any(tmp_path.iterdir()), "a rejected run must not create a run folder"


def test_multiworker_without_tf_config_fails_fast(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit):
        train.main(["--distribute", "multiworker", "--name", "x", "--logdir", str(tmp_path)])
    assert "TF_CONFIG" in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--game", "--model", "--noise", "--num-keypoints", "--layers", "--epochs",
                 "--batch-size", "--train-frames", "--seed", "--data-dir", "--logdir", "--name",
                 "--precision", "--jit", "--no-jit", "--distribute", "--resume", "--preset",
                 "--export-only", "--time-limit"):
        assert flag in text
    parser = train.build_parser()
    undocumented = [a.dest for a in parser._actions if a.dest != "help" and not a.help]
    assert undocumented == []
    # Every flag left out parses as None, so that the preset, not argparse, supplies its value.
    assert set(vars(parser.parse_args([])).values()) == {None}


def test_config_json_round_trip(tmp_path):
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "r"})
    run_dir = runs.create_run_dir(config)
    assert run_dir == tmp_path / "spaceinvaders" / "permakey" / "r"
    assert runs.load_config(run_dir) == config
    saved = json.loads((run_dir / "config.json").read_text())
    assert set(saved) >= {"model", "game", "model_config", "data", "train", "seed"}
    with pytest.raises(run_config.ConfigError, match="already exists"):
        runs.create_run_dir(config)
    with pytest.raises(run_config.ConfigError, match="conflict"):
        run_flags.resume_config(run_dir, {"batch_size": 4})
    assert run_flags.resume_config(run_dir, {"epochs": 7}).train.epochs == 7


# ----------------------------------------------------------------------------- CLI end to end


def _events(folder: Path) -> dict[str, set]:
    """{plugin name: {tags}} over every event file below ``folder``."""
    import tensorflow as tf

    found: dict[str, set] = {}
    for path in folder.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.metadata.plugin_data.plugin_name, set()).add(value.tag)
    return found


def test_cli_end_to_end_writes_the_run_folder(smoke_data_dir, tmp_path):
    result = subprocess.run(
        _train_cmd("--preset", "smoke", "--data-dir", str(smoke_data_dir), "--logdir", str(tmp_path),
                   "--name", "e2e", "--num-keypoints", "3", "--seed", "7", "--set", "pointnet_final_steps=3"),
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "spaceinvaders" / "permakey" / "e2e"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "permakey" and config["seed"] == 7 and config["preset"] == "smoke"
    assert config["model_config"]["num_keypoints"] == 3
    # One summary line per epoch on the console.
    summaries = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in summaries] == ["1/2", "2/2"]
    assert "val " in summaries[0] and "lr " in summaries[0]

    events = _events(run_dir / "tensorboard")
    scalars, images = events.get("scalars", set()), events.get("images", set())
    for tag in ("step/loss", "step/vae_loss", "step/lsp_loss", "step/pointnet_loss",
                "epoch/loss", "epoch/pointnet_loss"):
        assert tag in scalars, sorted(scalars)
    assert any(tag.startswith("step/learning_rate") for tag in scalars)
    assert any(tag.startswith("epoch/learning_rate") for tag in scalars)
    assert {"keypoints", "maps"} <= images
    assert list((run_dir / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    # The per-epoch quality read back from TensorBoard is what the console printed each epoch.
    from permakey_tf.evaluation.quality_curve import read_quality_curve

    curve = read_quality_curve(run_dir)
    printed = [float(line.split()[2]) for line in result.stdout.splitlines() if line.startswith("keypoints: f1 ")]
    assert sorted(curve["f1"]) == [1, 2] and len(printed) >= 2
    assert [round(curve["f1"][epoch], 3) for epoch in (1, 2)] == printed[:2]
    assert set(curve["fixed_layout_f1"]) == {1, 2}

    import keras

    from permakey_tf.models.permakey import PermaKey

    model = keras.models.load_model(run_dir / "checkpoints" / "best.keras")
    assert isinstance(model, PermaKey) and model.config.num_keypoints == 3
    assert (run_dir / "export" / "1" / "saved_model.pb").exists()
    # The final PointNet phase ran on the kept checkpoint, which it replaced (the joint one kept).
    assert "Final PointNet phase: 3 steps" in result.stdout
    record = json.loads((run_dir / "checkpoints" / "final_pointnet.json").read_text())
    assert record["frames"] == 64 and (run_dir / "checkpoints" / "joint.keras").exists()

    # Re-export an existing run: a new version, the old one untouched.
    assert train.main(["--export-only", str(run_dir)]) == 0
    assert (run_dir / "export" / "2" / "saved_model.pb").exists()


def _wait_for_epoch(backup_dir: Path, process, timeout: float) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pointer = backup_dir / "latest.json"
        if pointer.exists():
            return int(json.loads(pointer.read_text())["folder"].split("-")[1])
        if process.poll() is not None:
            raise AssertionError(f"the run ended before its first epoch: {process.stderr.read()[-3000:]}")
        time.sleep(0.02)
    raise AssertionError("no epoch completed in time")


def test_resume_after_kill_continues_from_the_next_epoch(smoke_data_dir, tmp_path):
    epochs = 4
    args = ("--preset", "smoke", "--data-dir", str(smoke_data_dir), "--logdir", str(tmp_path),
            "--name", "killed", "--epochs", str(epochs))
    process = subprocess.Popen(_train_cmd(*args), env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "spaceinvaders" / "permakey" / "killed"
    try:
        done = _wait_for_epoch(run_dir / "backup", process, timeout=240)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert 1 <= done < epochs, "the kill must land before the run finished"
    done = int(json.loads((run_dir / "backup" / "latest.json").read_text())["folder"].split("-")[1])
    saved = runs.load_config(run_dir)
    steps_per_epoch = saved.data.train_frames // saved.train.batch_size

    result = subprocess.run(_train_cmd("--resume", str(run_dir)), env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming {run_dir} after epoch {done} (optimizer step {done * steps_per_epoch})" in result.stdout
    epochs_run = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs_run == [f"{e}/{epochs}" for e in range(done + 1, epochs + 1)]
    state = json.loads((run_dir / "backup" / "epoch-0004" / "state.json").read_text())
    assert state["epoch"] == epochs and state["global_step"] == epochs * steps_per_epoch
    assert (run_dir / "export" / "1" / "saved_model.pb").exists()


def test_time_limit_ends_the_run_at_an_epoch_boundary_and_resume_continues(smoke_data_dir, tmp_path):
    epochs = 3
    args = ("--preset", "smoke", "--data-dir", str(smoke_data_dir), "--logdir", str(tmp_path),
            "--name", "limited", "--epochs", str(epochs))
    run_dir = tmp_path / "spaceinvaders" / "permakey" / "limited"
    first = subprocess.run(_train_cmd(*args, "--time-limit", "0.0001"), env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [line.split()[1] for line in first.stdout.splitlines() if line.startswith("epoch ")] == ["1/3"]
    assert f"Stopped by --time-limit after epoch 1 of 3; continue with: python train.py --resume {run_dir}" \
        in first.stdout
    assert (run_dir / "export" / "1" / "saved_model.pb").exists()
    resumed = subprocess.run(_train_cmd("--resume", str(run_dir)), env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")] == ["2/3", "3/3"]
    assert "--time-limit" not in resumed.stdout


def test_cli_trains_and_exports_transporter_on_noisy_frames(smoke_data_dir, tmp_path):
    result = subprocess.run(
        _train_cmd("--preset", "smoke", "--model", "transporter", "--noise", "vertical",
                   "--data-dir", str(smoke_data_dir), "--logdir", str(tmp_path), "--name", "tr",
                   "--epochs", "1"),
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "spaceinvaders" / "transporter" / "tr"
    config = runs.load_config(run_dir)
    assert config.model == "transporter" and config.data.noise == "vertical"
    # The new run's output offset came from its frames (decoder_offset_init "data_mean", the
    # default): Space Invaders is mostly black, so every channel's offset is far below the zero
    # it starts at (a few Adam steps move it by ~0.01).
    import keras

    import permakey_tf.models.transporter  # noqa: F401  (registers the classes)

    model = keras.models.load_model(run_dir / "checkpoints" / "best.keras", compile=False)
    beta = model.decoder.output_norm.beta.numpy()
    assert (beta < -1.0).all(), beta
    assert config.train.early_stopping_patience == 5
    events = _events(run_dir / "tensorboard")
    assert {"step/loss", "epoch/loss"} <= events["scalars"] and {"keypoints", "maps"} <= events["images"]
    assert (run_dir / "checkpoints" / "best.keras").exists()
    assert (run_dir / "export" / "1" / "saved_model.pb").exists()
    assert "ran out of data" not in result.stderr


def test_export_only_reports_a_missing_or_corrupt_checkpoint(tmp_path, capsys):
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "broken"})
    run_dir = runs.create_run_dir(config)
    assert train.main(["--export-only", str(run_dir)]) == train.EXIT_CORRUPT
    assert "does not exist" in capsys.readouterr().err
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.keras").write_bytes(b"garbage")
    assert train.main(["--export-only", str(run_dir)]) == train.EXIT_CORRUPT
    assert "cannot be loaded (it is not a complete .keras archive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--export-only", str(tmp_path / "nowhere")])
    assert "not a run folder" in capsys.readouterr().err


def _backup_values(path):
    import h5py

    values = {}
    with h5py.File(path, "r") as store:
        store.visititems(lambda name, item: values.__setitem__(name, np.asarray(item)) if isinstance(item, h5py.Dataset) else None)
    return values


def test_a_resumed_run_equals_an_uninterrupted_one_by_value(smoke_data_dir, tmp_path):
    """Two epochs straight, and one epoch then --resume for the second, end with the same
    weights and optimizer states (every variable of the backup), the PointNet restart (at step
    12, inside the second epoch) included."""
    common = ("--preset", "smoke", "--data-dir", str(smoke_data_dir), "--logdir", str(tmp_path),
              "--set", "pointnet_restart_step=12")
    straight = subprocess.run(_train_cmd(*common, "--name", "straight", "--epochs", "2"), env=_env(),
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = subprocess.run(_train_cmd(*common, "--name", "resumed", "--epochs", "1"), env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed_dir = tmp_path / "spaceinvaders" / "permakey" / "resumed"
    second = subprocess.run(_train_cmd("--resume", str(resumed_dir), "--epochs", "2"), env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    # config.json describes the run as continued: 2 epochs, like the straight one.
    assert "config.json: epochs 1 -> 2." in second.stdout
    assert json.loads((resumed_dir / "config.json").read_text())["train"]["epochs"] == 2
    a = _backup_values(tmp_path / "spaceinvaders" / "permakey" / "straight" / "backup" / "epoch-0002" / "state.weights.h5")
    b = _backup_values(resumed_dir / "backup" / "epoch-0002" / "state.weights.h5")
    assert set(a) == set(b) and len(a) > 50
    # The restart zeroed the PointNet optimizer's step count at step 12: 4 steps since, 16 for the others.
    iterations = sorted({int(v) for name, v in a.items() if name.endswith("optimizer/vars/0")})  # step counts
    assert iterations == [4, 16], iterations
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
