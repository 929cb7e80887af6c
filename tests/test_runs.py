"""permakey_tf.training.runs: the run folder's layout, its config.json and the folder readers."""

from __future__ import annotations

import json

import pytest

from permakey_tf.training import run_config, run_flags, runs


def test_a_run_folder_is_read_back_with_its_config_and_model(tmp_path):
    config = run_flags.resolve_config({"preset": "quick", "logdir": str(tmp_path), "name": "r",
                                       "data_dir": str(tmp_path / "data")})
    run_dir = runs.create_run_dir(config)
    with pytest.raises(runs.NotARunError, match="no trained model"):
        runs.read_run_folder(run_dir)
    (run_dir / runs.CHECKPOINT).parent.mkdir()
    (run_dir / runs.CHECKPOINT).write_bytes(b"")  # read_run_folder only needs it to exist
    run = runs.read_run_folder(run_dir)
    assert run.checkpoint == run_dir / runs.CHECKPOINT and run.saved_model is None
    assert run.config == config and run.label == "spaceinvaders/permakey/r"


def test_config_json_is_written_whole_and_sorted(tmp_path):
    """write_config goes through a temporary file: the folder never holds half a config, and
    no temporary is left behind."""
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "r"})
    run_dir = runs.create_run_dir(config)
    assert sorted(p.name for p in run_dir.iterdir()) == [runs.CONFIG_FILE]
    text = (run_dir / runs.CONFIG_FILE).read_text()
    assert text.endswith("}\n") and list(json.loads(text)) == sorted(json.loads(text))
    stale = run_dir / "config.json.tmp"
    stale.write_text("{half")
    assert runs.remove_stale_temporaries(run_dir) == [stale] and not stale.exists()


def test_a_folder_without_config_is_not_a_run(tmp_path):
    with pytest.raises(runs.NotARunError, match="no config.json"):
        runs.read_run_folder(tmp_path)
    with pytest.raises(run_config.ConfigError, match="not a run folder"):
        runs.load_config(tmp_path / "missing")


def test_refuses_a_missing_folder_and_a_run_without_a_model(tmp_path):
    with pytest.raises(runs.NotARunError, match="does not exist"):
        runs.read_run_folder(tmp_path / "nope")
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": "permakey", "game": "pong", "model_config": {"num_keypoints": 4}}))
    with pytest.raises(runs.NotARunError, match=r"not a valid run config.*seed"):
        runs.read_run_folder(tmp_path)  # config.json is read typed: every field must be there
    config = run_flags.resolve_config({"game": "pong", "preset": "smoke", "logdir": str(tmp_path)})
    runs.write_config(config, tmp_path)
    with pytest.raises(runs.NotARunError, match=r"checkpoints/best.keras.*saved_model.pb"):
        runs.read_run_folder(tmp_path)
    (tmp_path / "export" / "3").mkdir(parents=True)
    (tmp_path / "export" / "3" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "export" / "12").mkdir()
    (tmp_path / "export" / "12" / "saved_model.pb").write_bytes(b"")
    run = runs.read_run_folder(tmp_path)
    assert run.checkpoint is None and run.saved_model.name == "12"  # newest version, numerically
    assert run.config == config and run.num_keypoints == config.model_config.num_keypoints
