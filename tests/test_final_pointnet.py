"""The final PointNet phase (permakey_tf.training.final_pointnet): a fresh PointNet fitted on the kept
checkpoint's error maps replaces the joint one; nothing else changes and nothing is lost."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.training import final_pointnet
from permakey_tf.atomic_files import file_digest
from permakey_tf.training.checkpoints import save_model_atomically
from permakey_tf.config import PermaKeyConfig
from permakey_tf.models.permakey import PermaKey
from permakey_tf.models.pointnet import keypoint_outputs, pointnet_loss

TINY = PermaKeyConfig(encoder_filters=(4, 8, 8, 8), latent_dim=4, lsp_hidden_widths=(16, 8), num_keypoints=3,
                      pointnet_final_steps=40, pointnet_final_frames=48,
                      keypoint_refinement_steps=0)  # a PointNet's keypoints as they are


def _frames(count: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[count, 84, 84, 3]``: a bright square at a random place on a dark background."""
    rng = np.random.default_rng(seed)
    frames = np.full((count, 84, 84, 3), 20, np.uint8)
    for frame in frames:
        x, y = rng.integers(4, 72, size=2)
        frame[y:y + 8, x:x + 8] = 230
    return frames


def _batches(frames: np.ndarray, batch_size: int = 16):
    return [frames[i:i + batch_size] for i in range(0, len(frames), batch_size)]


def _static_pointnet(model) -> None:
    """Zero kernels: the same keypoints on every frame (a PointNet that settled on a layout)."""
    model.pointnet.set_weights([np.zeros_like(w) if w.ndim > 1 else w for w in model.pointnet.get_weights()])


@pytest.fixture()
def checkpoint_dir(tmp_path):
    """A checkpoint whose joint PointNet puts its keypoints at the same place on every frame."""
    keras.utils.set_random_seed(3)
    model = PermaKey(TINY)
    model(_frames(2))
    _static_pointnet(model)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    save_model_atomically(model, folder / "best.keras")
    return folder


def _load(path):
    return keras.models.load_model(path, compile=False)


def _loss_on(model, maps) -> float:
    return float(pointnet_loss(keypoint_outputs(model.pointnet, model.config, maps, training=False), maps,
                               model.config))


HELD_OUT = _frames(32, seed=9)


def test_the_phase_replaces_only_the_pointnet_and_lowers_its_loss_on_the_settled_maps(checkpoint_dir):
    best = checkpoint_dir / "best.keras"
    before_digest = file_digest(best)
    joint = _load(best)
    frames = _frames(64)
    maps = tf.constant(final_pointnet.settled_error_maps(joint, _batches(frames), 48))
    assert maps.shape == (48, 84, 84, 2)

    assert final_pointnet.finish_run(checkpoint_dir, TINY, _batches(frames), HELD_OUT, batch_size=16, seed=0, log=lambda _: None)

    assert file_digest(checkpoint_dir / final_pointnet.JOINT_CHECKPOINT) == before_digest, "joint checkpoint kept"
    record = json.loads((checkpoint_dir / final_pointnet.RECORD).read_text())
    assert record["joint_sha256"] == before_digest and record["result_sha256"] == file_digest(best)
    assert record["steps"] == 40 and record["frames"] == 48 and record["kept"] == "refit"
    assert record["refit_loss_ratio"] < record["joint_loss_ratio"] == pytest.approx(1.0)
    final = _load(best)
    for module in ("encoder", "decoder"):
        for a, b in zip(getattr(joint, module).get_weights(), getattr(final, module).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(joint.lspns, final.lspns):
        for u, v in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(u, v)
    changed = [not np.array_equal(u, v) for u, v in zip(joint.pointnet.get_weights(), final.pointnet.get_weights())]
    assert any(changed), "the PointNet must be the refitted one"
    assert _loss_on(final, maps) < 0.9 * _loss_on(joint, maps)


def test_the_phase_runs_once_per_joint_checkpoint_and_is_deterministic(checkpoint_dir, tmp_path):
    frames = _frames(64)
    spare = tmp_path / "spare"
    spare.mkdir()
    (spare / "best.keras").write_bytes((checkpoint_dir / "best.keras").read_bytes())
    assert final_pointnet.finish_run(checkpoint_dir, TINY, _batches(frames), HELD_OUT, 16, seed=5, log=lambda _: None)
    result = (checkpoint_dir / "best.keras").read_bytes()
    lines = []
    assert not final_pointnet.finish_run(checkpoint_dir, TINY, _batches(frames), HELD_OUT, 16, seed=5, log=lines.append)
    assert (checkpoint_dir / "best.keras").read_bytes() == result and "already applied" in lines[0]

    assert final_pointnet.finish_run(spare, TINY, _batches(frames), HELD_OUT, 16, seed=5, log=lambda _: None)
    for a, b in zip(_load(checkpoint_dir / "best.keras").pointnet.get_weights(),
                    _load(spare / "best.keras").pointnet.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_refit_that_settles_on_a_fixed_layout_is_not_kept(tmp_path, monkeypatch):
    keras.utils.set_random_seed(3)
    model = PermaKey(TINY)
    model(_frames(2))
    save_model_atomically(model, tmp_path / "best.keras")
    before = (tmp_path / "best.keras").read_bytes()
    joint_ratio = final_pointnet.held_out_scores(model, HELD_OUT)["loss_ratio"]
    assert joint_ratio < 1.0, "the untrained joint PointNet's keypoints move with the frames"
    monkeypatch.setattr(final_pointnet, "refit_pointnet", lambda model, *args: _static_pointnet(model))
    lines = []
    assert final_pointnet.finish_run(tmp_path, TINY, _batches(_frames(32)), HELD_OUT, 16, seed=0, log=lines.append)
    assert (tmp_path / "best.keras").read_bytes() == before, "the joint PointNet stays"
    record = json.loads((tmp_path / final_pointnet.RECORD).read_text())
    assert record["kept"] == "joint" and record["refit_loss_ratio"] == pytest.approx(1.0)
    assert record["joint_loss_ratio"] == pytest.approx(joint_ratio) and "keeping the joint" in lines[-1]
    assert not final_pointnet.finish_run(tmp_path, TINY, _batches(_frames(32)), HELD_OUT, 16, seed=0,
                                         log=lines.append), "decided once per joint checkpoint"


def test_a_run_without_the_phase_is_left_alone(tmp_path):
    keras.utils.set_random_seed(3)
    model = PermaKey(TINY)
    model(_frames(2))
    save_model_atomically(model, tmp_path / "best.keras")
    before = (tmp_path / "best.keras").read_bytes()
    assert not final_pointnet.finish_run(tmp_path, TINY.replace(pointnet_final_steps=0), _batches(_frames(32)), HELD_OUT, 16, seed=0, log=lambda _: None)
    assert (tmp_path / "best.keras").read_bytes() == before
    assert not (tmp_path / final_pointnet.JOINT_CHECKPOINT).exists()


def test_bad_phase_settings_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="pointnet_final_steps must be >= 0"):
        TINY.replace(pointnet_final_steps=-1)
    with pytest.raises(ValueError, match="pointnet_final_learning_rate > 0"):
        TINY.replace(pointnet_final_learning_rate=0.0)


@pytest.mark.parametrize("criterion, kept", [("loss_ratio", "joint"), ("moving_error_coverage", "refit")])
def test_the_configured_criterion_decides_and_both_are_recorded(tmp_path, monkeypatch, criterion, kept):
    """Joint: the lower loss ratio; refit: more of the moving error covered. Each criterion
    keeps its own winner, and the record holds both PointNets' scores under both."""
    keras.utils.set_random_seed(3)
    model = PermaKey(TINY)
    model(_frames(2))
    save_model_atomically(model, tmp_path / "best.keras")
    scores = iter([{"loss_ratio": 0.5, "moving_error_coverage_gain": 0.1},   # joint
                   {"loss_ratio": 0.6, "moving_error_coverage_gain": 0.3}])  # refit
    monkeypatch.setattr(final_pointnet, "held_out_scores", lambda model, frames: next(scores))
    monkeypatch.setattr(final_pointnet, "refit_pointnet", lambda model, *args: None)
    lines = []
    phase = TINY.replace(pointnet_final_criterion=criterion)
    assert final_pointnet.finish_run(tmp_path, phase, _batches(_frames(32)), HELD_OUT, 16, seed=0, log=lines.append)
    record = json.loads((tmp_path / final_pointnet.RECORD).read_text())
    assert record["kept"] == kept and record["criterion"] == criterion
    assert (record["joint_loss_ratio"], record["refit_loss_ratio"]) == (0.5, 0.6)
    assert (record["joint_moving_error_coverage_gain"], record["refit_moving_error_coverage_gain"]) == (0.1, 0.3)
    assert any(f"keeping the {kept}" in line for line in lines)


def test_the_moving_error_coverage_of_a_fixed_layout_gains_nothing(checkpoint_dir):
    """The settled (static) joint PointNet of the fixture covers nothing beyond its own layout."""
    scores = final_pointnet.held_out_scores(_load(checkpoint_dir / "best.keras"), HELD_OUT)
    assert scores["moving_error_coverage_gain"] == pytest.approx(0.0, abs=1e-6)
    assert scores["loss_ratio"] == pytest.approx(1.0)


def test_an_unknown_criterion_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="loss_ratio, moving_error_coverage"):
        TINY.replace(pointnet_final_criterion="f1")
