"""permakey_tf.data.streams: the pipelines' seeded random streams (order, noise and pairs by seed, epoch and pass)."""

import numpy as np

from permakey_tf.data import pipelines

from synthetic_frames import NOISE, epoch_arrays, frame_dataset, identify, pair_arrays


def test_training_is_reproducible_per_seed_and_fresh_every_epoch():
    def build(seed):
        return pipelines.frame_batches(
            frame_dataset([30, 34]), batch_size=8, seed=seed, noise=NOISE,
            drop_remainder=False, with_mask=True,
        )

    run_a, run_b = build(seed=3), build(seed=3)
    a1, a2 = epoch_arrays(run_a), epoch_arrays(run_a)
    b1, b2 = epoch_arrays(run_b), epoch_arrays(run_b)
    # Same seed: identical batches, noise included, epoch by epoch.
    np.testing.assert_array_equal(a1[0], b1[0])
    np.testing.assert_array_equal(a2[0], b2[0])
    # Each epoch is a shuffled permutation of all 64 frames.
    ids1, ids2 = identify(*a1), identify(*a2)
    assert sorted(ids1) == list(range(64)) and sorted(ids2) == list(range(64))
    assert not np.array_equal(ids1, ids2), "reshuffled each epoch"
    assert not np.array_equal(ids1, np.arange(64)), "shuffled at all"
    # Fresh noise: the same frame gets other bars in the next epoch.
    mask1 = a1[1][np.argsort(ids1)]
    mask2 = a2[1][np.argsort(ids2)]
    same = [np.array_equal(m1, m2) for m1, m2 in zip(mask1, mask2)]
    assert np.mean(same) < 0.1
    # Another seed: other order and other noise.
    c1 = epoch_arrays(build(seed=4))
    assert not np.array_equal(identify(*c1), ids1)


def test_evaluation_mode_keeps_order_and_fixed_noise_across_passes():
    pipeline = pipelines.frame_batches(
        frame_dataset([20, 13]), batch_size=8, training=False, seed=5, noise=NOISE,
        with_mask=True,
    )
    first, second = epoch_arrays(pipeline), epoch_arrays(pipeline)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(identify(*first), np.arange(33))
    # Bars differ between frames (drawn per frame), and the bars are really drawn.
    assert first[1].any(axis=(1, 2)).all()
    assert len({m.tobytes() for m in first[1]}) > 25
    # The noise of a frame does not depend on the batch size.
    other = epoch_arrays(pipelines.frame_batches(
        frame_dataset([20, 13]), batch_size=5, training=False, seed=5, noise=NOISE,
        with_mask=True,
    ))
    np.testing.assert_array_equal(first[0], other[0])


def test_training_pairs_are_reproducible_and_redrawn_each_epoch():
    def build():
        return pipelines.pair_batches(
            frame_dataset([60, 40]), batch_size=5, seed=1, noise=NOISE,
            pairs=pipelines.PairConfig(
                window_length=20, source_range=(0, 9), target_range=(10, 19), pairs_per_window=5
            ),
            with_info=True,
        )

    run_a, run_b = build(), build()
    a1, a2, b1 = pair_arrays(run_a), pair_arrays(run_a), pair_arrays(run_b)
    np.testing.assert_array_equal(a1[0], b1[0])
    np.testing.assert_array_equal(a1[1], b1[1])
    assert len(a1[0]) == len(a2[0]) == 25

    def drawn(run):
        info = run[2]
        keys = zip(info["episode_id"], info["source_step"], info["target_step"])
        return {key: info["source_mask"][i] for i, key in enumerate(keys)}

    pairs1, pairs2 = drawn(a1), drawn(a2)
    # Other (source, target) steps are drawn in the next epoch ...
    assert len(set(pairs1) & set(pairs2)) < 10
    # ... and any pair drawn again gets other bars.
    for key in set(pairs1) & set(pairs2):
        assert not np.array_equal(pairs1[key], pairs2[key])
