"""permakey_tf.training.trainer: the final PointNet phase under a time limit, and re-exports of a run."""

from __future__ import annotations

import io
import json
import os
import types
from pathlib import Path

from permakey_tf.training import run_flags, trainer

from fake_clock import FakeClock


def test_the_final_pointnet_phase_runs_only_where_the_time_limit_leaves_room_for_it(capsys):
    from permakey_tf.training.callbacks import StopAtTimeLimit

    config = run_flags.resolve_config({"preset": "quick"})  # 600 phase steps, 375 steps per epoch
    data = types.SimpleNamespace(steps_per_epoch=375)
    best = types.SimpleNamespace(stopped_early=False)
    clock = FakeClock()
    limit = StopAtTimeLimit(600.0, stream=io.StringIO(), clock=clock)
    limit.set_model(types.SimpleNamespace(stop_training=False))
    limit.set_params({"epochs": 6})
    limit.on_train_begin()
    for epoch in range(6):
        clock.now += 80.0  # 480 s of training; the phase is estimated at half an epoch, 40 s
        limit.on_epoch_end(epoch)
    assert trainer._phase_fits_in_time_limit(limit, best, config, data, Path("run"))
    assert trainer._phase_fits_in_time_limit(None, best, config, data, Path("run"))  # no limit
    clock.now = 570.0  # 30 s left
    assert not trainer._phase_fits_in_time_limit(limit, best, config, data, Path("run"))
    assert "apply it with: python train.py --resume run" in capsys.readouterr().out
    clock.now = 480.0
    limit.stopped_after_epoch = 4  # stopped by the limit: the run is not finished
    assert not trainer._phase_fits_in_time_limit(limit, best, config, data, Path("run"))


def test_a_finished_checkpoint_is_exported_once_by_training_and_again_only_on_request(saved_run):
    # saved_run's version 1 was written without a record: the end-of-training export adds one ...
    assert trainer.export_run(saved_run, skip_if_exported=True) == 0
    assert sorted(p.name for p in (saved_run / "export").iterdir() if p.is_dir()) == ["1", "2"]
    # ... and a --resume of the finished run (same checkpoint) adds none ...
    assert trainer.export_run(saved_run, skip_if_exported=True) == 0
    assert sorted(p.name for p in (saved_run / "export").iterdir() if p.is_dir()) == ["1", "2"]
    # ... while a changed checkpoint, or --export-only, does.
    checkpoint = saved_run / "checkpoints" / "best.keras"
    os.utime(checkpoint)  # same bytes: still the same checkpoint
    assert trainer.export_run(saved_run, skip_if_exported=True) == 0
    assert trainer.export_run(saved_run) == 0
    assert sorted(p.name for p in (saved_run / "export").iterdir() if p.is_dir()) == ["1", "2", "3"]
    record = json.loads((saved_run / "export" / "exported.json").read_text())
    assert set(record) == {"2", "3"} and len(set(record.values())) == 1
