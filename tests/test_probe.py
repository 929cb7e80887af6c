"""permakey_tf.scoring.probe: the episode split and the ridge probe's R^2."""

import numpy as np

from permakey_tf.scoring import probe


def test_split_by_episode_keeps_episodes_whole_and_splits_few_long_ones_in_blocks():
    episodes = np.repeat([3, 1, 2, 5], [10, 30, 25, 35])
    steps = np.concatenate([np.arange(n) for n in (10, 30, 25, 35)])
    fit = probe.split_by_episode(episodes, steps)
    for e in np.unique(episodes):  # never split inside an episode
        assert len(set(fit[episodes == e])) == 1
    assert fit.any() and not fit.all()
    single = probe.split_by_episode(np.zeros(256), np.arange(256) + 7, block=64)
    np.testing.assert_array_equal(single, (np.arange(256) // 64) % 2 == 0)


def test_ridge_probe_r2_is_one_for_a_linear_variable_and_not_above_zero_for_noise_or_constants():
    rng = np.random.default_rng(2)
    n = 400
    x = rng.normal(size=(n, 6))
    fit = np.arange(n) < n // 2
    variables = {
        "linear": 3 * x[:, 0] - 2 * x[:, 4] + 5,
        "noise": rng.normal(size=n) * 10,
        "partly_missing": np.where(np.arange(n) % 3 == 0, np.nan, 10 * x[:, 1]),
    }
    scores = probe.probe_r2(x, variables, fit)
    assert scores["linear"] > 0.99
    assert scores["partly_missing"] > 0.99
    assert scores["noise"] < 0.05
    constant = probe.probe_r2(np.ones((n, 6)), {"y": variables["linear"]}, fit)
    assert constant["y"] <= 0.0
    # A variable that barely changes on the scored part is not reported.
    assert probe.probe_r2(x, {"flat": np.full(n, 2.0)}, fit) == {}
