"""permakey_tf.scoring.seed_agreement: how closely runs place keypoints on the same frames."""

import numpy as np
import pytest

from permakey_tf.scoring.seed_agreement import nearest_keypoint_distances, seed_agreement, set_distance

N = 20


def _moving_square_track(n=N):
    """[n, 2] (x, y): an object moving right 3 px per frame on row 42."""
    return np.stack([12.0 + 3 * np.arange(n), np.full(n, 42.0)], -1)


def _run(track, static_points):
    """[n, 1 + len(static_points), 2]: one keypoint on ``track``, the others still."""
    still = np.broadcast_to(np.asarray(static_points, float), (len(track), len(static_points), 2))
    return np.concatenate([track[:, None], still], axis=1)


def test_the_same_points_in_another_order_are_distance_zero():
    a = _run(_moving_square_track(), [[10, 10], [70, 20]])
    b = a[:, ::-1]  # keypoint identities are arbitrary per run
    assert set_distance(a, b) == 0.0
    agreement = seed_agreement({"seed 0": a, "seed 1": b})
    assert agreement.model == agreement.worst_pair == 0.0
    assert agreement.random > 10.0  # three random points per frame are far from each other's


def test_a_shift_is_measured_in_pixels_in_both_directions():
    a = _run(_moving_square_track(), [[10, 10], [70, 20]])
    b = a + np.array([3.0, 0.0])  # every keypoint 3 px to the right
    np.testing.assert_allclose(nearest_keypoint_distances(a, b), 3.0)
    assert set_distance(a, b) == pytest.approx(3.0)
    # A run with one extra keypoint far away: a -> b unchanged (0), b -> a pays for it once.
    c = np.concatenate([a, np.full((N, 1, 2), [80.0, 10.0])], axis=1)
    far = np.linalg.norm(np.array([80.0, 10.0]) - np.array([70.0, 20.0]))  # nearest on every frame: (70, 20)
    assert set_distance(a, c) == pytest.approx(0.5 * (0.0 + far / 4))


def test_a_tracking_seed_and_a_still_seed_differ_where_their_fixed_layouts_agree():
    track = _moving_square_track()
    tracking = _run(track, [[10, 10]])
    still = _run(np.broadcast_to(track.mean(0), track.shape), [[10, 10]])  # at the track's mean
    agreement = seed_agreement({"tracking": tracking, "still": still})
    expected = 0.5 * np.abs(track[:, 0] - track[:, 0].mean()).mean()  # half the points differ
    assert agreement.model == pytest.approx(expected)
    assert agreement.fixed_layout == pytest.approx(0.0)  # same mean positions
    assert agreement.pairwise.shape == (2, 2) and agreement.pairwise[0, 1] == agreement.pairwise[1, 0]


def test_independent_random_runs_are_as_far_as_the_random_reference():
    rng = np.random.default_rng(3)
    runs = {f"seed {s}": rng.uniform(0, 84, size=(400, 8, 2)) for s in range(3)}
    agreement = seed_agreement(runs, seed=0)
    assert agreement.model == pytest.approx(agreement.random, rel=0.1)
    assert agreement.worst_pair >= agreement.model
    # Seeded: the same seed gives the same reference.
    assert seed_agreement(runs, seed=0).random == agreement.random


def test_needs_two_runs_on_the_same_frames():
    a = _run(_moving_square_track(), [[10, 10]])
    with pytest.raises(ValueError, match="at least 2"):
        seed_agreement({"seed 0": a})
    with pytest.raises(ValueError, match="same frames: 20 vs 10"):
        seed_agreement({"seed 0": a, "seed 1": a[:10]})


def test_seeds_of_one_setting_group_together_whatever_precision_auto_chose():
    """precision "auto" may pick float32 for one seed and bfloat16 for the next on the same
    machine: they are still one setting; a different model field is not."""
    from permakey_tf.evaluation.figures import seed_groups

    def entry(seed, precision, keypoints=8):
        return {"config": {"seed": seed, "train": {"precision": precision, "name": f"s{seed}"},
                           "model_config": {"num_keypoints": keypoints}}}

    entries = [entry(0, "float32"), entry(1, "mixed_bfloat16"), entry(2, "float32", keypoints=16)]
    (group,) = seed_groups(entries)
    assert [e["config"]["seed"] for e in group] == [0, 1]
