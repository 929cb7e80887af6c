"""permakey_tf.training.callbacks: the NaN stop and the time limit."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest

from dense_model import tiny_model
from fake_clock import FakeClock


def test_nan_stops_training_and_keeps_the_last_good_state(tmp_path):
    import tensorflow as tf

    from permakey_tf.training import callbacks as cb, checkpoints

    model = tiny_model()
    x = np.ones([16, 3], np.float32)
    y = np.ones([16, 1], np.float32)
    bad_x = x.copy()
    bad_x[0, 0] = np.nan
    # Epoch 1 is clean; epoch 2's third batch holds a NaN.
    train_ds = tf.data.Dataset.from_tensor_slices((np.concatenate([x, x, bad_x]), np.concatenate([y, y, y])))
    best = checkpoints.BestCheckpointAndEarlyStopping(tmp_path / "best.keras", patience=None)
    backup = checkpoints.ResumeBackup(tmp_path / "backup", stateful={"best": best})
    with pytest.raises(cb.NonFiniteLossError, match="loss became nan") as error:
        model.fit(train_ds.batch(4), validation_data=(x, y), epochs=3, steps_per_epoch=6,
                  callbacks=[cb.StopOnNonFiniteLoss(kept="kept!"), best, backup], verbose=0)
    assert "epoch 2" in str(error.value) and "kept!" in str(error.value)
    assert best.best_epoch == 1 and (tmp_path / "best.keras").exists()
    restored = tiny_model()
    state = checkpoints.restore_backup(restored, tmp_path / "backup")
    assert state["epoch"] == 1 and state["global_step"] == 6
    assert all(np.isfinite(w).all() for w in restored.get_weights())


def test_time_limit_stops_before_the_epoch_that_would_run_past_it():
    from permakey_tf.training.callbacks import StopAtTimeLimit

    clock, model = FakeClock(), types.SimpleNamespace(stop_training=False)
    limit = StopAtTimeLimit(100.0, stream=io.StringIO(), clock=clock)
    limit.set_model(model)
    limit.on_train_begin()
    for epoch, length in enumerate((30.0, 25.0, 30.0)):  # after 55 s an epoch of up to 30 s fits
        clock.now += length
        limit.on_epoch_end(epoch)
        if model.stop_training:
            break
    assert limit.stopped_after_epoch == 3 and clock.now == 85.0  # 85 + 30 > 100
    assert "stops after epoch 3" in limit.stream.getvalue()
    # On the run's last epoch there is nothing to stop, and nothing is said.
    limit.set_params({"epochs": 3})
    model.stop_training = False
    limit.on_train_begin()
    for epoch in range(3):  # 90 s + 30 s > 100 s after the third, but that is the last
        clock.now += 30.0
        limit.on_epoch_end(epoch)
    assert limit.stopped_after_epoch is None and not model.stop_training
    with pytest.raises(ValueError, match="> 0"):
        StopAtTimeLimit(0.0)
