"""tf.data pipelines on synthetic in-memory examples with the dataset's structure.

Every synthetic frame is a constant colour that encodes its index (R = index % 256,
G = index // 256, B = 7), so a frame can be identified from any pixel the bars did not cover.
"""

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.data import pipelines
from permakey_tf.data.noise import NoiseConfig

NOISE = NoiseConfig(mode="both")


def _episodes(lengths):
    episode_ids = np.concatenate([np.full(n, e, np.int32) for e, n in enumerate(lengths)])
    steps = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
    return episode_ids, steps


def _frames_for(indices):
    indices = np.asarray(indices)
    colours = np.stack([indices % 256, indices // 256, np.full_like(indices, 7)], -1)
    return np.broadcast_to(colours[:, None, None, :], (len(indices), 84, 84, 3)).astype(np.uint8)


def _frame_dataset(lengths):
    episode_ids, steps = _episodes(lengths)
    images = _frames_for(np.arange(len(steps)))
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, "episode_id": episode_ids, "step": steps}
    )


def _object_dataset(lengths, seed=0):
    """Examples with objects: frame i has i % 4 objects, label j, bbox (j/10, ...)."""
    episode_ids, steps = _episodes(lengths)
    images = _frames_for(np.arange(len(steps)))

    def generate():
        for i in range(len(steps)):
            count = i % 4
            yield {
                "image": images[i],
                "episode_id": episode_ids[i],
                "step": steps[i],
                "objects": {
                    "bbox": np.tile(np.arange(count, dtype=np.float32)[:, None] / 10, (1, 4)),
                    "label": np.arange(count, dtype=np.int64),
                    "is_hud": np.arange(count) == 0,
                    "is_static": np.zeros(count, bool),
                },
            }

    signature = {
        "image": tf.TensorSpec([84, 84, 3], tf.uint8),
        "episode_id": tf.TensorSpec([], tf.int32),
        "step": tf.TensorSpec([], tf.int32),
        "objects": {
            "bbox": tf.TensorSpec([None, 4], tf.float32),
            "label": tf.TensorSpec([None], tf.int64),
            "is_hud": tf.TensorSpec([None], tf.bool),
            "is_static": tf.TensorSpec([None], tf.bool),
        },
    }
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _identify(images, masks):
    """Frame index of each noisy frame, read from a pixel no bar covers."""
    ids = []
    for image, mask in zip(images, masks):
        row, col = np.argwhere(~mask)[0]
        red, green, blue = image[row, col].astype(int)
        assert blue == 7
        ids.append(red + 256 * green)
    return np.array(ids)


def _epoch(pipeline):
    """One pass as numpy: (frames [N,84,84,3], masks [N,84,84])."""
    frames, masks = zip(*[(f.numpy(), m.numpy()) for f, m in pipeline])
    return np.concatenate(frames), np.concatenate(masks)


# ------------------------------------------------------------------------------ frames


def test_frame_batches_are_uint8_batches_of_the_requested_size():
    pipeline = pipelines.frame_batches(_frame_dataset([40]), batch_size=8, noise=NOISE)
    batches = list(pipeline)
    assert len(batches) == 5
    assert all(b.dtype == tf.uint8 and b.shape == (8, 84, 84, 3) for b in batches)
    # Training drops a partial last batch (static shapes), evaluation keeps it.
    assert len(list(pipelines.frame_batches(_frame_dataset([42]), batch_size=8))) == 5
    assert len(list(pipelines.frame_batches(_frame_dataset([42]), batch_size=8, training=False))) == 6


def test_training_is_reproducible_per_seed_and_fresh_every_epoch():
    def build(seed):
        return pipelines.frame_batches(
            _frame_dataset([30, 34]), batch_size=8, seed=seed, noise=NOISE,
            drop_remainder=False, with_mask=True,
        )

    run_a, run_b = build(seed=3), build(seed=3)
    a1, a2 = _epoch(run_a), _epoch(run_a)
    b1, b2 = _epoch(run_b), _epoch(run_b)
    # Same seed: identical batches, noise included, epoch by epoch.
    np.testing.assert_array_equal(a1[0], b1[0])
    np.testing.assert_array_equal(a2[0], b2[0])
    # Each epoch is a shuffled permutation of all 64 frames.
    ids1, ids2 = _identify(*a1), _identify(*a2)
    assert sorted(ids1) == list(range(64)) and sorted(ids2) == list(range(64))
    assert not np.array_equal(ids1, ids2), "reshuffled each epoch"
    assert not np.array_equal(ids1, np.arange(64)), "shuffled at all"
    # Fresh noise: the same frame gets other bars in the next epoch.
    mask1 = a1[1][np.argsort(ids1)]
    mask2 = a2[1][np.argsort(ids2)]
    same = [np.array_equal(m1, m2) for m1, m2 in zip(mask1, mask2)]
    assert np.mean(same) < 0.1
    # Another seed: other order and other noise.
    c1 = _epoch(build(seed=4))
    assert not np.array_equal(_identify(*c1), ids1)


def test_evaluation_mode_keeps_order_and_fixed_noise_across_passes():
    pipeline = pipelines.frame_batches(
        _frame_dataset([20, 13]), batch_size=8, training=False, seed=5, noise=NOISE,
        with_mask=True,
    )
    first, second = _epoch(pipeline), _epoch(pipeline)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(_identify(*first), np.arange(33))
    # Bars differ between frames (drawn per frame), and the bars are really drawn.
    assert first[1].any(axis=(1, 2)).all()
    assert len({m.tobytes() for m in first[1]}) > 25
    # The noise of a frame does not depend on the batch size.
    other = _epoch(pipelines.frame_batches(
        _frame_dataset([20, 13]), batch_size=5, training=False, seed=5, noise=NOISE,
        with_mask=True,
    ))
    np.testing.assert_array_equal(first[0], other[0])


def test_clean_frames_pass_through_unchanged():
    pipeline = pipelines.frame_batches(_frame_dataset([16]), batch_size=16, training=False)
    np.testing.assert_array_equal(next(iter(pipeline)).numpy(), _frames_for(np.arange(16)))


# ------------------------------------------------------------------------------ pairs


def _pairs(pipeline):
    sources, targets, infos = [], [], []
    for source, target, info in pipeline:
        sources.append(source.numpy())
        targets.append(target.numpy())
        infos.append({k: v.numpy() for k, v in info.items()})
    info = {k: np.concatenate([i[k] for i in infos]) for k in infos[0]}
    return np.concatenate(sources), np.concatenate(targets), info


def test_gap_pairs_stay_in_one_episode_with_the_requested_gap():
    lengths = [30, 5, 41, 12]
    episode_ids, steps = _episodes(lengths)
    gap = 7
    pipeline = pipelines.pair_batches(
        _frame_dataset(lengths), batch_size=4, training=False,
        pairs=pipelines.PairConfig(sampling="gap", gap=gap), with_info=True,
    )
    sources, targets, info = _pairs(pipeline)
    # Every (t, t + gap) pair of every episode, none across an episode boundary.
    assert len(sources) == sum(max(n - gap, 0) for n in lengths)
    src_ids = _identify(sources, info["source_mask"])
    tgt_ids = _identify(targets, info["target_mask"])
    np.testing.assert_array_equal(episode_ids[src_ids], episode_ids[tgt_ids])
    np.testing.assert_array_equal(steps[tgt_ids] - steps[src_ids], gap)
    np.testing.assert_array_equal(steps[src_ids], info["source_step"])
    np.testing.assert_array_equal(episode_ids[src_ids], info["episode_id"])


def test_window_pairs_follow_the_reference_ranges():
    lengths = [250, 99, 120]  # windows: 2 + 0 + 1 (partial windows dropped)
    episode_ids, steps = _episodes(lengths)
    config = pipelines.PairConfig(sampling="window", pairs_per_window=6)
    pipeline = pipelines.pair_batches(
        _frame_dataset(lengths), batch_size=6, training=False, noise=NOISE, pairs=config,
        with_info=True,
    )
    sources, targets, info = _pairs(pipeline)
    assert len(sources) == 3 * 6
    src_ids = _identify(sources, info["source_mask"])
    tgt_ids = _identify(targets, info["target_mask"])
    np.testing.assert_array_equal(episode_ids[src_ids], episode_ids[tgt_ids])
    window_start = (steps[src_ids] // 100) * 100
    np.testing.assert_array_equal(steps[tgt_ids] // 100 * 100, window_start)
    src_offset = steps[src_ids] - window_start
    tgt_offset = steps[tgt_ids] - window_start
    assert (src_offset >= 0).all() and (src_offset < 49).all()
    assert (tgt_offset >= 50).all() and (tgt_offset < 99).all()
    # Source and target get independent bars.
    assert not any(np.array_equal(s, t) for s, t in zip(info["source_mask"], info["target_mask"]))
    # Evaluation mode: the same pairs and bars on every pass.
    again = _pairs(pipeline)
    np.testing.assert_array_equal(again[0], sources)
    np.testing.assert_array_equal(again[1], targets)


def test_training_pairs_are_reproducible_and_redrawn_each_epoch():
    def build():
        return pipelines.pair_batches(
            _frame_dataset([60, 40]), batch_size=5, seed=1, noise=NOISE,
            pairs=pipelines.PairConfig(
                window_length=20, source_range=(0, 9), target_range=(10, 19), pairs_per_window=5
            ),
            with_info=True,
        )

    run_a, run_b = build(), build()
    a1, a2, b1 = _pairs(run_a), _pairs(run_a), _pairs(run_b)
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


def test_pair_batches_return_uint8_tuples():
    pipeline = pipelines.pair_batches(
        _frame_dataset([60]), batch_size=4, pairs=pipelines.PairConfig(sampling="gap", gap=2)
    )
    source, target = next(iter(pipeline))
    assert source.dtype == target.dtype == tf.uint8
    assert source.shape == target.shape == (4, 84, 84, 3)


# ------------------------------------------------------------------------------ evaluation


def test_evaluation_batches_keep_everything_in_order():
    lengths = [7, 6]
    pipeline = pipelines.evaluation_batches(
        _object_dataset(lengths), batch_size=4, seed=5, noise=NOISE
    )
    batches = list(pipeline)
    episode_ids, steps = _episodes(lengths)
    np.testing.assert_array_equal(np.concatenate([b["episode_id"] for b in batches]), episode_ids)
    np.testing.assert_array_equal(np.concatenate([b["step"] for b in batches]), steps)
    first = batches[0]
    np.testing.assert_array_equal(first["image"].numpy(), _frames_for(np.arange(4)))
    # Objects: frame i has i % 4 of them; padding has label -1.
    np.testing.assert_array_equal(first["num_objects"].numpy(), [0, 1, 2, 3])
    labels = first["objects"]["label"].numpy()
    np.testing.assert_array_equal(labels[3], [0, 1, 2])
    np.testing.assert_array_equal(labels[1], [0, -1, -1])
    np.testing.assert_allclose(first["objects"]["bbox"].numpy()[2, 1], [0.1] * 4)
    np.testing.assert_array_equal(first["objects"]["is_hud"].numpy()[2], [True, False, False])
    # The noisy image and mask are those of the evaluation-mode frame pipeline.
    frames, masks = _epoch(pipelines.frame_batches(
        _object_dataset(lengths), batch_size=4, training=False, seed=5, noise=NOISE,
        with_mask=True,
    ))
    np.testing.assert_array_equal(np.concatenate([b["noisy_image"] for b in batches]), frames)
    np.testing.assert_array_equal(np.concatenate([b["bar_mask"] for b in batches]), masks)


def test_evaluation_batches_pad_to_max_objects_and_reject_overflow():
    pipeline = pipelines.evaluation_batches(_object_dataset([8]), batch_size=4, max_objects=5)
    batch = next(iter(pipeline))
    assert batch["objects"]["bbox"].shape == (4, 5, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_objects"):
        list(pipelines.evaluation_batches(_object_dataset([8]), batch_size=4, max_objects=2))


# ------------------------------------------------------------------------------ bad input


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="window"):
        pipelines.PairConfig(sampling="random")
    with pytest.raises(ValueError, match="target_range"):
        pipelines.PairConfig(target_range=(50, 120))
    with pytest.raises(TypeError, match="image"):
        pipelines.frame_batches(tf.data.Dataset.from_tensor_slices({"x": [1, 2]}))
    with pytest.raises(TypeError, match="uint8"):
        pipelines.frame_batches(tf.data.Dataset.from_tensor_slices(
            {"image": tf.zeros([2, 84, 84, 3]), "episode_id": [0, 0], "step": [0, 1]}
        ))
    with pytest.raises(TypeError, match="objects"):
        pipelines.evaluation_batches(_frame_dataset([3]))
