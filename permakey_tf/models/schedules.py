"""The learning-rate schedules of both models, written once.

"paper": ``rate x decay_rate ** floor(step / decay_steps)`` (staircase exponential decay, the
papers' text). "reference": ``rate / (1 + decay_rate * step / decay_steps)`` (inverse-time decay,
the authors' code; Transporter's floors ``step / decay_steps``, PermaKey's does not).
"""

from __future__ import annotations

import keras

SCHEDULES = ("paper", "reference")


def adam_with_schedule(learning_rate: float, decay_steps: float, decay_rate: float, schedule: str,
                       inverse_time_staircase: bool = False, name: str | None = None
                       ) -> keras.optimizers.Optimizer:
    """Adam whose learning rate follows ``schedule`` ("paper" or "reference", module docstring)."""
    if schedule == "paper":
        rate = keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate,
                                                           staircase=True)
    elif schedule == "reference":
        rate = keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps, decay_rate,
                                                           staircase=inverse_time_staircase)
    else:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}; choose one of {SCHEDULES}")
    return keras.optimizers.Adam(rate, name=name)
