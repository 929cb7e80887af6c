"""permakey_tf.data.loading: a game's split from the tfds_atari builder, in generation order, and
the pipelines over it."""

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.data import loading, pipelines
from permakey_tf.data.noise import NoiseConfig

NOISE = NoiseConfig(mode="both")


def test_bad_arguments_name_the_valid_ones():
    with pytest.raises(ValueError, match="validation"):
        loading.load_split("pong", "training")
    with pytest.raises(TypeError, match="dataset_seed"):
        loading.load_frames("pong", "train", sede=1)


@pytest.fixture(scope="module")
def tiny_pong(tmp_path_factory):
    """A tiny atari_frames/pong variant built once for the loader tests (a few seconds)."""
    kwargs = dict(
        data_dir=str(tmp_path_factory.mktemp("tfds")),
        train_frames=120, validation_frames=40, test_frames=40,
    )
    loading.load_split("pong", "test", **kwargs)  # builds the dataset
    return kwargs


def test_load_split_gives_examples_in_episode_order(tiny_pong):
    examples = list(loading.load_split("pong", "validation", build_if_missing=False, **tiny_pong))
    assert len(examples) == 40
    assert examples[0]["image"].dtype == tf.uint8 and examples[0]["image"].shape == (84, 84, 3)
    episode_ids = np.array([e["episode_id"].numpy() for e in examples])
    steps = np.array([e["step"].numpy() for e in examples])
    for episode in np.unique(episode_ids):
        where = np.flatnonzero(episode_ids == episode)
        assert np.all(np.diff(where) == 1), "episodes are contiguous"
        np.testing.assert_array_equal(np.diff(steps[where]), 1)


def test_loaders_over_the_real_builder(tiny_pong):
    dataset = {**tiny_pong, "build_if_missing": False}
    gap = 5
    pairs = loading.load_pairs(
        "pong", "train", training=False, batch_size=8, noise=NOISE,
        pairs=pipelines.PairConfig(sampling="gap", gap=gap), **dataset,
    )
    source, target = next(iter(pairs))
    assert source.shape == target.shape == (8, 84, 84, 3)
    frames = loading.load_frames("pong", "train", batch_size=16, seed=2, noise=NOISE, **dataset)
    again = loading.load_frames("pong", "train", batch_size=16, seed=2, noise=NOISE, **dataset)
    first = np.concatenate([b.numpy() for b in frames])
    assert first.shape == (112, 84, 84, 3)
    np.testing.assert_array_equal(first, np.concatenate([b.numpy() for b in again]))
    evaluation = loading.load_evaluation("pong", "test", batch_size=40, noise=NOISE, **dataset)
    batch = next(iter(evaluation))
    assert batch["num_objects"].numpy().min() >= 1, "Pong frames show objects"
    fixed = loading.load_frames("pong", "test", training=False, batch_size=40, noise=NOISE, **dataset)
    np.testing.assert_array_equal(batch["noisy_image"].numpy(), next(iter(fixed)).numpy())


def test_missing_dataset_says_how_to_build_it(tmp_path):
    import tfds_atari

    with pytest.raises(tfds_atari.DatasetNotPreparedError, match="tfds_atari.build"):
        loading.load_split("pong", "train", data_dir=str(tmp_path), train_frames=10,
                        validation_frames=10, test_frames=10, build_if_missing=False)
    assert not any(tmp_path.rglob("*.tfrecord*")), "nothing was built"
