"""A training run's configuration as data: :class:`RunConfig` and its parts.

A run is described by a :class:`RunConfig`: which model and game, the model's own config dataclass
(``PermaKeyConfig`` / ``TransporterConfig``, chosen through ``permakey_tf.models.registry``), the data it
trains on (:class:`DataSettings`) and how the loop runs (:class:`TrainConfig`). The defaults are
the paper's; ``permakey_tf.training.run_flags`` turns presets and command-line flags into a RunConfig, and
``permakey_tf.training.runs`` writes it to ``RUN_DIR/config.json`` and reads it back.

:class:`DataSettings` is the one place that says which dataset variant a run uses: its
``dataset_arguments`` (for ``permakey_tf.data.pipelines``'s loaders) and ``builder_arguments`` (for
``tfds_atari``) are what training, evaluation and the probes pass on.

Nothing here imports TensorFlow, so that CLIs can reject bad flags before any heavy work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from permakey_tf.models.registry import UnknownModelError, get_model_spec


class ConfigError(ValueError):
    """A flag, a setting or a saved config that cannot work; the message says what to change."""


# The fields of DataSettings that select the dataset variant (the rest choose how it is used).
DATASET_FIELDS = ("train_frames", "validation_frames", "test_frames", "data_dir", "dataset_seed")


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """What the run trains on.

    Attributes:
      game: dataset config / CLI game name (``tfds_atari.games``).
      noise: Noisy-Atari bars: "none", "horizontal", "vertical" or "both".
      train_frames / validation_frames / test_frames: split sizes of the generated dataset
        (paper: 85,000 / 5,000 / 5,000).
      data_dir: TFDS data directory (None = TFDS's default, ~/tensorflow_datasets).
      dataset_seed: the dataset's collection seed (emulator policies); the run's --seed seeds the
        model and the pipelines instead, so that runs with different seeds share one dataset.
      pairs: Transporter only: ``permakey_tf.data.pipelines.PairConfig`` fields (None = its defaults, the
        reference's 100-frame windows).
    """

    game: str = "spaceinvaders"
    noise: str = "none"
    train_frames: int = 85_000
    validation_frames: int = 5_000
    test_frames: int = 5_000
    data_dir: Optional[str] = None
    dataset_seed: int = 0
    pairs: Optional[dict] = None

    def dataset_arguments(self, data_dir: Optional[str] = None) -> dict:
        """Keyword arguments of ``permakey_tf.data.loading``'s loaders (load_frames, load_pairs,
        load_evaluation) that select this dataset variant; ``data_dir`` (if given) replaces the
        recorded data directory."""
        arguments = {name: getattr(self, name) for name in DATASET_FIELDS}
        if data_dir is not None:
            arguments["data_dir"] = data_dir
        return arguments

    def builder_arguments(self, data_dir: Optional[str] = None) -> dict:
        """The same variant as keyword arguments of ``tfds_atari.get_builder`` / ``load_split``
        (which call the collection seed ``seed``)."""
        arguments = self.dataset_arguments(data_dir)
        arguments["seed"] = arguments.pop("dataset_seed")
        return arguments


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How the training loop runs; defaults are the paper's (docs/BACKGROUND.md section 5).

    Attributes:
      epochs: maximum number of epochs (100).
      batch_size: global batch size (None = the paper's per model: 32 PermaKey, 64 Transporter).
      early_stopping_patience: epochs without validation improvement before stopping
        (None = the paper's per model: 10 PermaKey, 5 Transporter).
      precision: Keras dtype policy: "float32", "mixed_bfloat16" or "mixed_float16"; "auto"
        times float32 and bfloat16 matrix products when the run starts and uses the faster
        (permakey_tf.precision); config.json then records the policy chosen.
      jit: XLA-compile the train step (False = graph mode).
      distribute: "none", "mirrored" (all local devices) or "multiworker" (TF_CONFIG).
      logdir: root of the run folders (LOGDIR/<game>/<model>/<name>).
      name: run folder name (None = a UTC timestamp).
      image_frames: number of fixed validation frames drawn into TensorBoard each epoch (spread
        evenly over the validation split).
      quality_frames: validation frames (spread over the split) on which keypoint quality
        (permakey_tf.scoring.quality: F1 vs the fixed layout, shift gain, probe, ...) is measured and
        logged each epoch; 0 = off.
      statistics_batches: training batches over which BatchNorm's inference statistics are
        recomputed with the current weights before every validation ("precise BatchNorm",
        permakey_tf.models.batch_norm.recompute_statistics); 0 keeps the moving averages.
      scalar_every_steps: write the per-step TensorBoard scalars every this many steps.
    """

    epochs: int = 100
    batch_size: Optional[int] = None
    early_stopping_patience: Optional[int] = None
    precision: str = "float32"
    jit: bool = False
    distribute: str = "none"
    logdir: str = "runs"
    name: Optional[str] = None
    image_frames: int = 8
    quality_frames: int = 256
    statistics_batches: int = 64
    scalar_every_steps: int = 1


# Fields that config.json files written by earlier versions may hold and that no longer mean
# anything; reading such a file ignores them (so old runs stay readable).
RETIRED_FIELDS = {
    "TrainConfig": frozenset({"export_version"}),  # export.py always takes the next free version
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, resolved; serialised as RUN_DIR/config.json."""

    model: str
    game: str
    seed: int
    preset: str
    model_config: Any  # PermaKeyConfig | TransporterConfig
    data: DataSettings
    train: TrainConfig

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "game": self.game,
            "seed": self.seed,
            "preset": self.preset,
            "model_config": self.model_config.to_dict(),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunConfig":
        """The inverse of :meth:`to_dict`; ConfigError names unknown keys and fields."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown config.json keys {unknown}; valid: {sorted(known)}")
        model = values["model"]
        return cls(
            model=model,
            game=values["game"],
            seed=int(values["seed"]),
            preset=values.get("preset", "paper"),
            model_config=model_config_class(model).from_dict(values["model_config"]),
            data=_from_dict(DataSettings, values["data"]),
            train=_from_dict(TrainConfig, values["train"]),
        )


def _from_dict(cls, values: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    retired = RETIRED_FIELDS.get(cls.__name__, frozenset())
    unknown = sorted(set(values) - names - retired)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} fields {unknown}; valid: {sorted(names)}")
    return cls(**{k: v for k, v in values.items() if k in names})


def model_config_class(model: str):
    """The config dataclass of ``model`` (permakey_tf.models.registry); ConfigError if unknown."""
    try:
        return get_model_spec(model).config_class
    except UnknownModelError as error:
        raise ConfigError(str(error)) from None
