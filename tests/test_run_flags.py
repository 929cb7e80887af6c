"""permakey_tf.training.run_flags: presets, the flag table, --set values and the --resume check."""

from __future__ import annotations

import dataclasses

import pytest

from permakey_tf.training import run_config, run_flags, runs


def test_defaults_are_the_papers_and_flags_override_presets():
    paper = run_flags.resolve_config({})
    assert (paper.model, paper.game, paper.preset) == ("permakey", "spaceinvaders", "paper")
    assert paper.train.batch_size == 32 and paper.train.epochs == 100
    assert paper.train.early_stopping_patience == 10
    assert (paper.data.train_frames, paper.data.validation_frames) == (85_000, 5_000)
    assert paper.model_config.lsp_layers == (0, 1) and paper.model_config.learning_rate == 2e-4
    assert paper.model_config.num_keypoints == 25  # the authors' K for Space Invaders
    transporter = run_flags.resolve_config({"model": "transporter", "game": "mspacman"})
    assert transporter.train.batch_size == 64 and transporter.train.early_stopping_patience == 5
    assert transporter.model_config.num_keypoints == 7

    quick = run_flags.resolve_config({"preset": "quick"})
    quick_steps_per_epoch = quick.data.train_frames // quick.train.batch_size
    # Sized for the README's 12-minute main job (docs/TRAINING.md).
    assert quick.model_config.lsp_layers == (0,) and quick.model_config.patch_size == 2
    assert quick.model_config.lsp_hidden_widths == (64, 32, 32)
    assert quick.model_config.pointnet_restart_step == quick.train.epochs * quick_steps_per_epoch // 2
    assert paper.model_config.pointnet_restart_step == 0  # the paper trains the PointNet throughout
    assert quick.model_config.pointnet_final_steps == 600 and paper.model_config.pointnet_final_steps == 0
    assert quick.model_config.keypoint_reduction == "spatial"  # the defaults, not the preset's
    assert quick.model_config.learning_rate == 1e-3
    assert quick.train.batch_size == 16 and quick.train.precision == "auto"
    assert not quick.train.jit and quick.data.train_frames == 6_000
    assert 2_000 <= quick.train.epochs * quick_steps_per_epoch <= 3_000
    # Transporter's quick run is longer: at 6 epochs its Pong keypoints had only begun to track.
    quick_transporter = run_flags.resolve_config({"preset": "quick", "model": "transporter"})
    assert (quick_transporter.train.epochs, quick.train.epochs) == (10, 6)
    assert run_flags.resolve_config({"preset": "quick", "model": "transporter", "epochs": 3}).train.epochs == 3

    overridden = run_flags.resolve_config(
        {"preset": "quick", "batch_size": 8, "layers": "0,1", "num_keypoints": 5, "epochs": 1}
    )
    assert overridden.train.batch_size == 8 and overridden.train.epochs == 1
    assert overridden.model_config.lsp_layers == (0, 1) and overridden.model_config.num_keypoints == 5
    patched = run_flags.resolve_config({"patch_size": 3})
    assert patched.model_config.patch_size == 3
    assert overridden.train.precision == "auto"  # untouched preset values stay


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
