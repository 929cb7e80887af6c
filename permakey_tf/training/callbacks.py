"""The training loop's own Keras callbacks: the NaN stop, the PointNet restart, the one-line
console summary per epoch, the time limit and precise BatchNorm before each validation.

The other callbacks live with what they write: TensorBoard in ``permakey_tf.training.summaries``, the best
checkpoint, early stopping and the resume backup in ``permakey_tf.training.checkpoints``; the model and
log readers they share are in ``permakey_tf.training.run_state``. Epoch numbers on the console and in TensorBoard count completed epochs (1 = after the first).
"""

from __future__ import annotations

import math
import sys
import time

import keras

from permakey_tf.training.run_state import global_step, learning_rates, scalar_logs


# ----------------------------------------------------------------------------- NaN stop


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message says what was kept and what to try."""


class RestartKeypointNetwork(keras.callbacks.Callback):
    """Calls ``model.restart_keypoint_network`` (PermaKey's PointNet, Transporter's keypointer)
    before the batch at which the global step (the first optimizer's, never reset:
    :func:`global_step`) reaches ``step`` (the config's ``keypoint_network_restart_step``). The
    step is read once when training starts and then counted here, so no batch waits on a
    variable read.

    The fresh weights are drawn with ``seed + step``, so a resumed run restarts exactly as an
    uninterrupted one; a run resumed after the restart step keeps its restored network (a run
    resumed exactly at the step restarts at its first batch)."""

    def __init__(self, step: int, seed: int):
        super().__init__()
        self.step, self.seed = int(step), int(seed)
        self._current = 0

    def on_train_begin(self, logs=None):
        self._current = global_step(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        if self._current == self.step:
            self.model.restart_keypoint_network(self.seed + self.step)

    def on_train_batch_end(self, batch, logs=None):
        self._current += 1


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss by raising :class:`NonFiniteLossError`.

    Raising (instead of setting ``stop_training``) means no later callback sees the broken epoch:
    the best checkpoint and the resume backup keep the last good state.

    Put it first in the callback list so that it runs before anything that saves.
    """

    def __init__(self, kept: str = ""):
        super().__init__()
        self.kept = kept
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, where: str):
        for name, value in scalar_logs(logs).items():
            if "loss" in name and not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{name} became {value} {where} (epoch {self._epoch + 1}). Training stopped. "
                    f"{self.kept} Try a lower learning rate or --precision float32, then --resume "
                    "(it continues from the last completed epoch)."
                )

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"at training step {batch + 1} of the epoch")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "in validation")


# ----------------------------------------------------------------------------- console


class EpochSummary(keras.callbacks.Callback):
    """Prints one line per epoch: time, training and validation losses, learning rate(s)."""

    def __init__(self, epochs: int, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        scalars = scalar_logs(logs)
        train = {k: v for k, v in scalars.items() if not k.startswith("val_") and "loss" in k}
        val = {k[4:]: v for k, v in scalars.items() if k.startswith("val_") and "loss" in k}
        rates = learning_rates(self.model)
        parts = [f"epoch {epoch + 1}/{self.epochs} ({time.time() - self._start:.1f}s)"]
        parts.append("train " + " ".join(f"{k}={v:.4g}" for k, v in train.items()))
        if val:
            parts.append("val " + " ".join(f"{k}={v:.4g}" for k, v in val.items()))
        if rates:
            parts.append("lr " + " ".join(f"{v:.3g}" for v in sorted(set(rates.values()))))
        print(" | ".join(parts), file=self.stream, flush=True)


class StopAtTimeLimit(keras.callbacks.Callback):
    """Ends training at an epoch boundary when the next epoch would run past a time limit.

    The next epoch is assumed to last as long as the longest one so far (an epoch here includes
    validation and the callbacks before this one, so place it last). Training stops normally:
    the best checkpoint and the resume state of the last epoch are written, and ``--resume``
    continues the run. The limit counts from the start of training, not of the process.

    Args:
      seconds: the limit, > 0.
      clock: seconds as a float (injectable for tests).
    """

    def __init__(self, seconds: float, stream=None, clock=time.monotonic):
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"the time limit must be > 0 seconds, got {seconds}")
        self.seconds = float(seconds)
        self.stream = stream or sys.stdout
        self.clock = clock
        self.stopped_after_epoch: int | None = None  # completed epochs when it stopped
        self._start = self._last = 0.0
        self._longest = 0.0

    def on_train_begin(self, logs=None):
        self._start = self._last = self.clock()
        self._longest = 0.0
        self.stopped_after_epoch = None

    def seconds_left(self) -> float:
        """What is left of the limit now (negative once it is past)."""
        return self.seconds - (self.clock() - self._start)

    @property
    def longest_epoch_seconds(self) -> float:
        return self._longest

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self._longest = max(self._longest, now - self._last)
        self._last = now
        elapsed = now - self._start
        last_epoch = (self.params or {}).get("epochs")
        if last_epoch is not None and epoch + 1 >= last_epoch:
            return  # the run ends here anyway
        if elapsed + self._longest > self.seconds:
            self.stopped_after_epoch = epoch + 1
            self.model.stop_training = True
            print(f"Time limit: {elapsed / 60:.1f} of {self.seconds / 60:.1f} min used and an epoch takes "
                  f"up to {self._longest / 60:.1f} min, so training stops after epoch {epoch + 1}.",
                  file=self.stream, flush=True)


# ----------------------------------------------------------------------------- statistics


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before every validation inside ``fit`` (so validation, the epoch's checkpoint, the
    TensorBoard panels and the export all see them), recomputes the model's BatchNorm moving
    statistics as the plain average over ``batches`` with the current weights
    (``batch_norm.recompute_statistics`` through ``model.statistics_pass``).

    Args:
      batches: a finite iterable of training batches (the same ones every time, so that resumed
        and uninterrupted runs agree).
    """

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.averaged = 0

    def on_test_begin(self, logs=None):
        from permakey_tf.models.batch_norm import recompute_statistics

        self.averaged = recompute_statistics(self.model, self.model.statistics_pass, self.batches)
