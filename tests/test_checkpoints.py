"""Tests for permakey_tf.training.checkpoints, in process on a tiny Keras model: the best checkpoint,
early stopping, the resume backup and what it refuses (corrupt files, pointers out of the backup
folder). The NaN stop that keeps the last good state: tests/test_callbacks.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dense_model import tiny_model


def test_corrupt_backup_gives_a_clear_error(tmp_path):
    from permakey_tf.training import checkpoints

    model = tiny_model()
    model.fit(np.ones([8, 3]), np.ones([8, 1]), epochs=1, verbose=0,
              callbacks=[checkpoints.ResumeBackup(tmp_path / "backup")])
    folder = checkpoints.read_latest(tmp_path / "backup")
    (folder / "state.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(checkpoints.CorruptBackupError, match="corrupt.*Delete"):
        checkpoints.restore_backup(tiny_model(), tmp_path / "backup")
    (tmp_path / "backup" / "latest.json").write_text("{")
    with pytest.raises(checkpoints.CorruptBackupError, match="pointer"):
        checkpoints.restore_backup(tiny_model(), tmp_path / "backup")


def test_early_stopping_counts_epochs_without_improvement(tmp_path):
    from permakey_tf.training import checkpoints

    model = tiny_model()
    best = checkpoints.BestCheckpointAndEarlyStopping(tmp_path / "best.keras", patience=2, save=False)
    best.set_model(model)
    for epoch, value in enumerate([3.0, 2.0, 2.5, 2.1]):
        best.on_epoch_end(epoch, {"val_loss": value})
    assert (best.best, best.best_epoch, best.epochs_since_best) == (2.0, 2, 2)
    assert model.stop_training and best.stopped_early
    # An epoch without validation cannot choose a checkpoint: a clear error, not a silent pass.
    with pytest.raises(ValueError, match="No validation loss"):
        best.on_epoch_end(4, {"loss": 1.0, "vae_loss": 0.5})


def test_a_resume_pointer_that_leads_outside_the_backup_is_refused_and_nothing_is_deleted(tmp_path):
    """latest.json naming a folder outside backup/ (an absolute path, '..', or a link out) is
    refused before anything is read; the outside folder and its files stay."""
    from permakey_tf.training import checkpoints

    backup = tmp_path / "run" / "backup"
    model = tiny_model()
    model.fit(np.ones([8, 3]), np.ones([8, 1]), epochs=1, verbose=0, callbacks=[checkpoints.ResumeBackup(backup)])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "unrelated.txt").write_text("keep me")
    (backup / "epoch-9999").symlink_to(outside, target_is_directory=True)
    for name in (str(outside), "../../elsewhere", "epoch-9999"):
        (backup / "latest.json").write_text(json.dumps({"folder": name}))
        with pytest.raises(checkpoints.CorruptBackupError, match="not an epoch-<n> folder inside"):
            checkpoints.restore_backup(tiny_model(), backup)
        with pytest.raises(checkpoints.CorruptBackupError):  # the next epoch's backup would replace it
            model.fit(np.ones([8, 3]), np.ones([8, 1]), epochs=1, verbose=0, callbacks=[checkpoints.ResumeBackup(backup)])
    assert (outside / "unrelated.txt").read_text() == "keep me"
