"""permakey_tf.training.run_config: the RunConfig's parts, the dataset variant they select, config.json."""

from __future__ import annotations

import dataclasses
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


def test_a_retired_model_field_is_read_at_its_fixed_value_and_refused_otherwise(tmp_path):
    """Runs saved before the finished experiments left PermaKeyConfig still load when they used
    the value the code now always has; a run that used another value is refused by name."""
    from permakey_tf.config import RETIRED_FIELDS

    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "old"})
    run_dir = runs.create_run_dir(config)
    saved = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    saved["model_config"].update(RETIRED_FIELDS)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    assert runs.load_config(run_dir) == config
    saved["model_config"]["gaussian_combination"] = "max"
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    with pytest.raises((run_config.ConfigError, ValueError), match="gaussian_combination='max' was a finished experiment"):
        runs.load_config(run_dir)
    with pytest.raises(run_config.ConfigError, match="lsp_border"):
        run_flags.resolve_config({"preset": "smoke", "model_options": ["lsp_border=replicate"]})


def test_every_config_flag_of_train_py_has_a_place_in_the_config():
    """FLAG_FIELDS is the one table of where flags land: every flag of train.py is in it or is
    one of the few that do not describe the config, and every entry names a real field."""
    import train

    flags = {action.dest for action in train.build_parser()._actions if action.dest != "help"}
    not_config = {"resume", "export_only", "time_limit", run_flags.MODEL_OPTIONS_FLAG}
    assert flags - not_config == set(run_flags.FLAG_FIELDS)
    config = run_flags.resolve_config({"preset": "smoke"})
    for flag, (part, field) in run_flags.FLAG_FIELDS.items():
        holder = config if part == "run" else getattr(config, part)
        assert hasattr(holder, field), f"{flag} -> {part}.{field} does not exist"


def test_resume_compares_every_described_flag_with_the_saved_run(tmp_path):
    config = run_flags.resolve_config({"game": "pong", "preset": "smoke", "logdir": str(tmp_path), "name": "r"})
    run_dir = runs.create_run_dir(config)
    same = {"game": "Pong", "noise": "none", "seed": 0, "layers": "0", "num_keypoints": 4,
            "train_frames": 64, "logdir": "/elsewhere", "name": "other"}
    assert run_flags.resume_config(run_dir, same) == config
    with pytest.raises(run_config.ConfigError, match=r"--layers \(0, 1\) \(the run has \(0,\)\); "
                                                     r"--num-keypoints 5 \(the run has 4\)"):
        run_flags.resume_config(run_dir, {"layers": "0,1", "num_keypoints": 5})
    changed = run_flags.resume_config(run_dir, {"epochs": 9, "jit": True})
    assert (changed.train.epochs, changed.train.jit) == (9, True)
    assert dataclasses.replace(changed, train=config.train) == config

    transporter = run_flags.resolve_config({"model": "transporter", "preset": "smoke",
                                            "logdir": str(tmp_path), "name": "t"})
    with pytest.raises(run_config.ConfigError, match="a transporter run has no lsp_layers"):
        run_flags.resume_config(runs.create_run_dir(transporter), {"layers": "0"})


def test_the_config_modules_do_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, permakey_tf.training.run_config, permakey_tf.training.run_flags, permakey_tf.training.runs, "
            "permakey_tf.atomic_files, permakey_tf.machine; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_set_values_take_the_type_of_their_config_field():
    """--set reads each value as its field's declared type: integers, numbers, booleans, words,
    integer lists, and "none" where the field is optional; a value of the wrong kind is refused
    with the kind the field takes."""
    from permakey_tf.config import PermaKeyConfig, TransporterConfig

    parsed = run_flags.parse_model_options(PermaKeyConfig, [
        "num_keypoints=5", "keypoint_sigma=0.07", "learning_rate=2e-4", "lsp_layers=0, 1,2",
        "inference_batch_statistics=yes", "pointnet_norm=layer", "lsp_hidden_widths=none",
        "pointnet-final-steps=0"])
    assert parsed == {"num_keypoints": 5, "keypoint_sigma": 0.07, "learning_rate": 2e-4,
                      "lsp_layers": (0, 1, 2), "inference_batch_statistics": True,
                      "pointnet_norm": "layer", "lsp_hidden_widths": None, "pointnet_final_steps": 0}
    assert type(parsed["keypoint_sigma"]) is float and type(parsed["num_keypoints"]) is int
    assert run_flags.parse_model_options(PermaKeyConfig, ["lsp_hidden_widths=32,16"]) == {
        "lsp_hidden_widths": (32, 16)}
    assert run_flags.parse_model_options(TransporterConfig, ["encoder_filters=8,8,16,16"]) == {
        "encoder_filters": (8, 8, 16, 16)}
    for option, kind in (("num_keypoints=2.5", "an integer"), ("keypoint_sigma=wide", "a number"),
                         ("inference_batch_statistics=maybe", "true or false"),
                         ("lsp_layers=0.5,1", "a comma-separated list of integers"),
                         ("lsp_layers=none", "a comma-separated list of integers")):
        with pytest.raises(run_config.ConfigError, match=kind):
            run_flags.parse_model_options(PermaKeyConfig, [option])
    with pytest.raises(run_config.ConfigError, match="expected FIELD=VALUE"):
        run_flags.parse_model_options(PermaKeyConfig, ["no_such_field=1"])
