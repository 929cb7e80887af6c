"""What the callbacks read from a model and its logs: optimizers by name, learning rates, the
global step, scalar logs, the validation loss."""

from __future__ import annotations

from typing import Mapping, Optional

import keras
import numpy as np

from permakey_tf.models.keypoint_model import KeypointModel


def model_optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """The model's optimizers by name (the names key the resume backup): a keypoint model's own
    ``named_optimizers()`` (PermaKey: one per module), else ``{"optimizer": model.optimizer}``."""
    if isinstance(model, KeypointModel):
        return dict(model.named_optimizers())
    main = getattr(model, "optimizer", None)
    return {"optimizer": main} if isinstance(main, keras.optimizers.Optimizer) else {}


def learning_rates(model: keras.Model) -> dict[str, float]:
    """Current learning rate of each optimizer: {"learning_rate": lr} for one optimizer,
    {"learning_rate/<attribute>": lr, ...} for several."""
    optimizers = model_optimizers(model)
    rates = {}
    for name, optimizer in optimizers.items():
        value = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        key = "learning_rate" if len(optimizers) == 1 else f"learning_rate/{name}"
        rates[key] = value
    return rates


def global_step(model: keras.Model) -> int:
    """Training steps taken so far: ``model.optimizer.iterations`` (restored on resume)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def scalar_logs(logs: Optional[Mapping]) -> dict[str, float]:
    out = {}
    for name, value in (logs or {}).items():
        try:
            array = np.asarray(keras.ops.convert_to_numpy(value))
        except Exception:  # non-numeric log entries are not scalars
            continue
        if array.size == 1 and array.dtype.kind in "fiu":
            out[name] = float(array.reshape(()))
    return out


def validation_loss(logs: Mapping) -> Optional[float]:
    """The validation loss used for the best checkpoint and early stopping: ``val_loss`` (both
    models report their total loss as ``loss``), or None when the epoch had no validation."""
    return scalar_logs(logs).get("val_loss")
