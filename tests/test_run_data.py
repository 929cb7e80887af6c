"""permakey_tf.training.run_data: the training data stream of a run, resumed at any epoch."""

from __future__ import annotations

import numpy as np

from permakey_tf.training import run_flags


def test_resumed_data_stream_equals_the_uninterrupted_one(smoke_data_dir):
    config = run_flags.resolve_config({"preset": "smoke", "data_dir": str(smoke_data_dir)})
    from permakey_tf.training.run_data import RunData

    data = RunData(config)
    steps = data.steps_per_epoch
    assert steps == config.data.train_frames // config.train.batch_size
    full = [np.asarray(batch) for batch in data.training(0, 3)]
    resumed = [np.asarray(batch) for batch in data.training(1, 3)]
    assert len(full) == 3 * steps and len(resumed) == 2 * steps
    for a, b in zip(full[steps:], resumed):
        np.testing.assert_array_equal(a, b)
    # ... while every epoch has its own order.
    assert not all(np.array_equal(a, b) for a, b in zip(full[:steps], full[steps:2 * steps]))
