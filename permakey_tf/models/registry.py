"""The models this project trains, one table: what train.py, evaluate.py and bench/ need to know.

Adding a model means adding one :class:`ModelSpec` to :data:`MODEL_SPECS`; no other module
branches on a model's name. Importing this module does not load TensorFlow (the model class is
imported on first use), so that CLIs can check flags first.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping

from permakey_tf.config import PermaKeyConfig, TransporterConfig


class UnknownModelError(ValueError):
    """A model name that is not in :data:`MODEL_SPECS`; the message lists the valid names."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything outside a model's own module that depends on which model it is.

    Attributes:
      name: CLI / config.json name (``--model NAME``).
      title: display name in tables and figures.
      config_class: the model's config dataclass (paper defaults; ``for_game`` / ``from_dict``).
      model_path: "module:Class" of the ``keras.Model`` subclass, imported lazily.
      examples: what one training example is: "frames" (single frames) or "pairs" (source /
        target frames of one episode, ``permakey_tf.data.pipelines.pair_batches``).
      paper_batch_size: the paper's (global) batch size.
      paper_patience: the paper's early-stopping patience, in epochs.
      has_error_maps: the model's outputs include ``error_maps`` (figures show them).
      inference_kwargs: keyword arguments for ``model(frames, ...)`` at evaluation time beyond
        ``training`` (e.g. skip PermaKey's reconstruction).
      random_cnn_from_config: the state probes' random-CNN baseline takes its encoder shape from
        this model's config (PermaKey: its VAE encoder); otherwise from the paper's PermaKey.
    """

    name: str
    title: str
    config_class: type
    model_path: str
    examples: str
    paper_batch_size: int
    paper_patience: int
    has_error_maps: bool = False
    inference_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    random_cnn_from_config: bool = False

    @property
    def model_class(self) -> type:
        """The model's class, a ``permakey_tf.models.keypoint_model.KeypointModel`` (imports
        TensorFlow)."""
        module, name = self.model_path.split(":")
        return getattr(importlib.import_module(module), name)

    def has_field(self, field: str) -> bool:
        """Whether the model's config has ``field`` (e.g. ``lsp_layers`` for ``--layers``)."""
        return field in {f.name for f in dataclasses.fields(self.config_class)}


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="permakey",
            title="PermaKey",
            config_class=PermaKeyConfig,
            model_path="permakey_tf.models.permakey:PermaKey",
            examples="frames",
            paper_batch_size=32,
            paper_patience=10,
            has_error_maps=True,
            inference_kwargs={"with_reconstruction": False},
            random_cnn_from_config=True,
        ),
        ModelSpec(
            name="transporter",
            title="Transporter",
            config_class=TransporterConfig,
            model_path="permakey_tf.models.transporter:Transporter",
            examples="pairs",
            paper_batch_size=64,
            paper_patience=5,
        ),
    )
}

MODELS: tuple[str, ...] = tuple(MODEL_SPECS)


def get_model_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; raises :class:`UnknownModelError` listing the valid names."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise UnknownModelError(f"Unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def register_all_models() -> None:
    """Imports every model class, which registers it for ``keras.models.load_model``."""
    for spec in MODEL_SPECS.values():
        spec.model_class  # noqa: B018  (the import is the point)
