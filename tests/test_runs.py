"""permakey_tf.runs: the run folder's layout and the dataset a run used, shared by train and evaluate."""

from __future__ import annotations

import dataclasses

import evaluate
from permakey_tf import runs, training


def test_train_and_evaluate_select_the_same_dataset_variant(tmp_path):
    config = training.resolve_config({"preset": "quick", "logdir": str(tmp_path), "name": "r",
                                      "data_dir": str(tmp_path / "data")})
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, dataset_seed=3))
    run_dir = runs.create_run_dir(config)
    (run_dir / runs.CHECKPOINT).parent.mkdir()
    (run_dir / runs.CHECKPOINT).write_bytes(b"")  # inspect_run only needs it to exist
    run = evaluate.inspect_run(run_dir)
    assert run.checkpoint == run_dir / runs.CHECKPOINT
    arguments = evaluate.dataset_kwargs_for(run, None)
    assert arguments == runs.dataset_arguments(dataclasses.asdict(config.data))
    assert arguments == {"train_frames": 6_000, "validation_frames": 256, "test_frames": 512,
                         "data_dir": str(tmp_path / "data"), "dataset_seed": 3}
    # --data-dir replaces the recorded folder and nothing else.
    moved = evaluate.dataset_kwargs_for(run, "/elsewhere")
    assert moved == {**arguments, "data_dir": "/elsewhere"}


def test_dataset_arguments_are_what_the_loaders_accept():
    from permakey_tf import data

    arguments = runs.dataset_arguments(dataclasses.asdict(training.DataSettings()))
    assert set(arguments) <= set(data._SPLIT_DEFAULTS) | {"dataset_seed"}
    data._split_kwargs(arguments)  # raises TypeError on an unknown argument
