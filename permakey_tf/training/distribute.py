"""tf.distribute for train.py: the strategy, the worker's role, and two Keras 3.15 workarounds.

Nothing at import time loads TensorFlow (``check_tf_config`` runs before any heavy work).
"""

from __future__ import annotations

import json
import os

from permakey_tf.training.run_config import ConfigError


def check_tf_config() -> dict:
    """The parsed TF_CONFIG of --distribute multiworker; ConfigError saying what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--distribute multiworker reads the cluster from the TF_CONFIG environment variable, "
            'which is not set. Example: TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
            '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
        )
    try:
        tf_config = json.loads(raw)
        workers = tf_config["cluster"]["worker"]
        task = tf_config["task"]
        int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not valid ({error!r}): {raw}") from None
    if not workers:
        raise ConfigError("TF_CONFIG lists no workers")
    return tf_config


def is_chief_worker() -> tuple[bool, int]:
    """(whether this process is the chief, its worker index) from TF_CONFIG."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = tf_config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in tf_config.get("cluster", {})
    chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
    return chief, index


def make_strategy(mode: str):
    """The tf.distribute strategy of --distribute ``mode`` (none = the default strategy)."""
    import tensorflow as tf

    if mode == "mirrored":
        return tf.distribute.MirroredStrategy()
    if mode == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def skip_symbolic_build(model) -> None:
    """Works around Keras 3.15 under tf.distribute: before the first step, fit/evaluate take one
    batch from the iterator and all-reduce it (MEAN) to build the model symbolically. On uint8
    frames MultiWorkerMirroredStrategy fails (CollectiveReduce has no uint8 kernel), and the batch
    taken is lost from the epoch. Our model and optimizers are built before fit, so the build is a
    no-op anyway: skip it."""
    if not model.built or not all(layer.built for layer in model._flatten_layers()):
        raise RuntimeError("the model must be built before skipping Keras's symbolic build")
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def vector_logs(model) -> None:
    """Works around Keras 3.15 under MultiWorkerMirroredStrategy: it reduces every train/test step
    output with strategy.reduce("MEAN", v, axis=0), which fails on the scalar logs every model
    returns. Returning each log as a [1] vector makes that reduce the mean over replicas."""
    import tensorflow as tf

    train_step, test_step = model.train_step, model.test_step

    def vectors(logs):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    model.train_step = lambda data: vectors(train_step(data))
    model.test_step = lambda data: vectors(test_step(data))
