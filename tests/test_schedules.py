"""permakey_tf.models.schedules: the paper's staircase and the reference's inverse-time decay, for every model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from permakey_tf.models.registry import MODEL_SPECS, get_model_spec


@pytest.mark.parametrize("model", sorted(MODEL_SPECS))
def test_paper_schedule_is_a_staircase_and_reference_an_inverse_time_decay(model):
    spec = get_model_spec(model)
    base = spec.config_class()
    rate, steps, decay = base.learning_rate, base.lr_decay_steps, base.lr_decay_rate
    for schedule in ("paper", "reference"):
        config = dataclasses.replace(base, lr_schedule=schedule)
        if model == "permakey":
            optimizer = spec.model_class(config).default_optimizer("vae")
        else:
            from permakey_tf.models.transporter import paper_optimizer

            optimizer = paper_optimizer(config)
        lr = optimizer._learning_rate  # the schedule (learning_rate is its current value)
        at = {s: float(np.asarray(lr(s))) for s in (0, steps - 1, steps, 2 * steps + 1)}
        if schedule == "paper":
            assert at[0] == pytest.approx(rate) and at[steps - 1] == pytest.approx(rate)
            assert at[steps] == pytest.approx(rate * decay)
            assert at[2 * steps + 1] == pytest.approx(rate * decay**2)
        else:  # rate / (1 + decay * t); PermaKey's t counts its single optimizer's steps, unfloored
            from permakey_tf.models.permakey import REFERENCE_OPTIMIZER_STEPS_PER_BATCH as per_batch

            t = {s: (per_batch * s / steps if model == "permakey" else s // steps) for s in at}
            for s, value in at.items():
                assert value == pytest.approx(rate / (1 + decay * t[s]), rel=1e-5), (schedule, s)
