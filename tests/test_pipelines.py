"""tf.data pipelines on synthetic in-memory examples with the dataset's structure
(tests/synthetic_frames.py). Their seeded random streams: tests/test_streams.py."""

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.data import pipelines

from synthetic_frames import NOISE, epoch_arrays, episodes, frame_dataset, frames_for, identify, pair_arrays


def _object_dataset(lengths, seed=0):
    """Examples with objects: frame i has i % 4 objects, label j, bbox (j/10, ...)."""
    episode_ids, steps = episodes(lengths)
    images = frames_for(np.arange(len(steps)))

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


# ------------------------------------------------------------------------------ frames


def test_frame_batches_are_uint8_batches_of_the_requested_size():
    pipeline = pipelines.frame_batches(frame_dataset([40]), batch_size=8, noise=NOISE)
    batches = list(pipeline)
    assert len(batches) == 5
    assert all(b.dtype == tf.uint8 and b.shape == (8, 84, 84, 3) for b in batches)
    # Training drops a partial last batch (static shapes), evaluation keeps it.
    assert len(list(pipelines.frame_batches(frame_dataset([42]), batch_size=8))) == 5
    assert len(list(pipelines.frame_batches(frame_dataset([42]), batch_size=8, training=False))) == 6


def test_clean_frames_pass_through_unchanged():
    pipeline = pipelines.frame_batches(frame_dataset([16]), batch_size=16, training=False)
    np.testing.assert_array_equal(next(iter(pipeline)).numpy(), frames_for(np.arange(16)))


# ------------------------------------------------------------------------------ pairs


def test_gap_pairs_stay_in_one_episode_with_the_requested_gap():
    lengths = [30, 5, 41, 12]
    episode_ids, steps = episodes(lengths)
    gap = 7
    pipeline = pipelines.pair_batches(
        frame_dataset(lengths), batch_size=4, training=False,
        pairs=pipelines.PairConfig(sampling="gap", gap=gap), with_info=True,
    )
    sources, targets, info = pair_arrays(pipeline)
    # Every (t, t + gap) pair of every episode, none across an episode boundary.
    assert len(sources) == sum(max(n - gap, 0) for n in lengths)
    src_ids = identify(sources, info["source_mask"])
    tgt_ids = identify(targets, info["target_mask"])
    np.testing.assert_array_equal(episode_ids[src_ids], episode_ids[tgt_ids])
    np.testing.assert_array_equal(steps[tgt_ids] - steps[src_ids], gap)
    np.testing.assert_array_equal(steps[src_ids], info["source_step"])
    np.testing.assert_array_equal(episode_ids[src_ids], info["episode_id"])


def test_window_pairs_follow_the_reference_ranges():
    lengths = [250, 99, 120]  # windows: 2 + 0 + 1 (partial windows dropped)
    episode_ids, steps = episodes(lengths)
    config = pipelines.PairConfig(sampling="window", pairs_per_window=6)
    pipeline = pipelines.pair_batches(
        frame_dataset(lengths), batch_size=6, training=False, noise=NOISE, pairs=config,
        with_info=True,
    )
    sources, targets, info = pair_arrays(pipeline)
    assert len(sources) == 3 * 6
    src_ids = identify(sources, info["source_mask"])
    tgt_ids = identify(targets, info["target_mask"])
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
    again = pair_arrays(pipeline)
    np.testing.assert_array_equal(again[0], sources)
    np.testing.assert_array_equal(again[1], targets)


def test_pair_batches_return_uint8_tuples():
    pipeline = pipelines.pair_batches(
        frame_dataset([60]), batch_size=4, pairs=pipelines.PairConfig(sampling="gap", gap=2)
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
    episode_ids, steps = episodes(lengths)
    np.testing.assert_array_equal(np.concatenate([b["episode_id"] for b in batches]), episode_ids)
    np.testing.assert_array_equal(np.concatenate([b["step"] for b in batches]), steps)
    first = batches[0]
    np.testing.assert_array_equal(first["image"].numpy(), frames_for(np.arange(4)))
    # Objects: frame i has i % 4 of them; padding has label -1.
    np.testing.assert_array_equal(first["num_objects"].numpy(), [0, 1, 2, 3])
    labels = first["objects"]["label"].numpy()
    np.testing.assert_array_equal(labels[3], [0, 1, 2])
    np.testing.assert_array_equal(labels[1], [0, -1, -1])
    np.testing.assert_allclose(first["objects"]["bbox"].numpy()[2, 1], [0.1] * 4)
    np.testing.assert_array_equal(first["objects"]["is_hud"].numpy()[2], [True, False, False])
    # The noisy image and mask are those of the evaluation-mode frame pipeline.
    frames, masks = epoch_arrays(pipelines.frame_batches(
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
        pipelines.evaluation_batches(frame_dataset([3]))
