"""A PointNet fitted alone on fixed maps (models.pointnet.fit_pointnet) with and without the
shrinking-sigma schedule (sigma_schedule): which sigma each update uses, and that no schedule
means exactly the fit it always was."""

from __future__ import annotations

import numpy as np
import pytest

from permakey_tf.config import PermaKeyConfig
from permakey_tf.models import pointnet as pointnet_module
from permakey_tf.models.pointnet import SIGMA_STAGES, fit_pointnet, sigma_schedule

SMALL = PermaKeyConfig(encoder_filters=(4, 8, 8, 8), num_keypoints=3, keypoint_sigma=0.1)


def _maps(count: int = 32, seed: int = 0) -> np.ndarray:
    """``[count, 84, 84, 1]``: a bright 6x6 square at a random place per map."""
    rng = np.random.default_rng(seed)
    maps = np.zeros((count, 84, 84, 1), np.float32)
    for m in maps:
        x, y = rng.integers(4, 74, size=2)
        m[y:y + 6, x:x + 6] = 1.0
    return maps


def test_schedule_is_one_stage_without_annealing():
    assert sigma_schedule(0.1, 0.0, 600) == [(0.1, 600)]
    assert sigma_schedule(0.1, 0.05, 600) == [(0.1, 600)]  # a narrower start is no annealing


def test_schedule_shrinks_geometrically_over_the_first_half_and_keeps_the_step_count():
    stages = sigma_schedule(0.1, 0.4, 600)
    sigmas = [s for s, _ in stages]
    assert len(stages) == SIGMA_STAGES + 1
    assert sigmas[0] == pytest.approx(0.4) and sigmas[-1] == 0.1
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))  # strictly shrinking
    ratios = [b / a for a, b in zip(sigmas, sigmas[1:])]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))  # geometric, ending at sigma
    assert sum(n for _, n in stages) == 600
    assert sum(n for _, n in stages[:-1]) == 300 and stages[-1][1] == 300


def test_schedule_rejects_a_negative_start():
    with pytest.raises(ValueError, match="sigma_start must be >= 0"):
        sigma_schedule(0.1, -0.2, 100)
    with pytest.raises(ValueError, match="pointnet_final_sigma_start must be >= 0"):
        PermaKeyConfig(pointnet_final_sigma_start=-1.0)


def test_each_update_uses_its_stage_sigma(monkeypatch):
    seen = []
    real_update = pointnet_module.pointnet_update

    def recording_update(pointnet, config, optimizer, maps, replicas=1):
        seen.append(config.keypoint_sigma)  # traced once per stage's tf.function
        return real_update(pointnet, config, optimizer, maps, replicas)

    monkeypatch.setattr(pointnet_module, "pointnet_update", recording_update)
    fit_pointnet(SMALL, _maps(), steps=16, batch_size=4, seed=0, sigma_start=0.3)
    expected = [s for s, _ in sigma_schedule(0.1, 0.3, 16)]
    assert seen == pytest.approx(expected)


def test_no_annealing_is_the_plain_fit_and_annealing_changes_it():
    maps = _maps()
    plain = fit_pointnet(SMALL, maps, steps=16, batch_size=4, seed=3)
    again = fit_pointnet(SMALL, maps, steps=16, batch_size=4, seed=3, sigma_start=0.0)
    annealed = fit_pointnet(SMALL, maps, steps=16, batch_size=4, seed=3, sigma_start=0.3)
    for a, b in zip(plain.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(plain.get_weights(), annealed.get_weights()))
