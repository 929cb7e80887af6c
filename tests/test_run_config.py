"""permakey_tf.training.run_config: the RunConfig's parts, the dataset variant they select, config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from permakey_tf.data import loading
from permakey_tf.training import run_config, run_flags, runs

REPO = Path(__file__).resolve().parents[1]


def test_loaders_and_builder_are_given_the_same_dataset_variant():
    """Training builds the dataset with builder_arguments, evaluation loads it with
    dataset_arguments: after the loaders' own translation both name the same variant, and
    --data-dir replaces the folder and nothing else."""
    settings = run_config.DataSettings(train_frames=6_000, validation_frames=256, test_frames=512,
                                       data_dir="/data", dataset_seed=3)
    loader = settings.dataset_arguments()
    assert loader == {"train_frames": 6_000, "validation_frames": 256, "test_frames": 512,
                      "data_dir": "/data", "dataset_seed": 3}
    translated = loading._split_kwargs(loader)  # raises TypeError on an argument the loaders lack
    builder = settings.builder_arguments()
    assert builder == {k: translated[k] for k in builder}
    assert builder["seed"] == 3
    assert settings.dataset_arguments("/elsewhere") == {**loader, "data_dir": "/elsewhere"}


def test_class_names_are_read_from_the_runs_own_dataset_variant(monkeypatch):
    """The per-class names come from the dataset the run used, its collection seed included
    (evaluation used to drop dataset_seed and read seed 0's metadata)."""
    import tfds_atari

    seen = {}

    class Info:
        features = {"objects": {"label": type("Label", (), {"names": ["Ball", "Player"]})()}}

    def fake_builder(game, **kwargs):
        seen.update(kwargs, game=game)
        return type("Builder", (), {"info": Info()})()

    monkeypatch.setattr(tfds_atari, "get_builder", fake_builder)
    settings = run_config.DataSettings(game="pong", dataset_seed=7, data_dir="/d")
    assert loading.class_names("pong", **settings.dataset_arguments()) == ("Ball", "Player")
    assert seen == {"game": "pong", **settings.builder_arguments()}


def test_config_json_of_an_earlier_version_is_still_read(tmp_path):
    """A retired field (export_version) in an old config.json is ignored; an unknown one is
    still an error that names it."""
    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "old"})
    run_dir = runs.create_run_dir(config)
    saved = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    saved["train"]["export_version"] = 1
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    assert runs.load_config(run_dir) == config
    saved["train"]["export_versoin"] = 1
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    with pytest.raises(run_config.ConfigError, match=r"export_versoin"):
        runs.load_config(run_dir)


def test_the_config_modules_do_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, permakey_tf.training.run_config, permakey_tf.training.run_flags, permakey_tf.training.runs, "
            "permakey_tf.atomic_files, permakey_tf.machine; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
