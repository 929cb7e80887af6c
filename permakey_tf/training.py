"""Training-run configuration: presets and flag resolution.

Nothing here imports TensorFlow, so that ``train.py`` can reject bad flags before any heavy work.

A run is described by a :class:`RunConfig`: which model and game, the model's own config dataclass
(``PermaKeyConfig`` / ``TransporterConfig``), the data it trains on (:class:`DataSettings`) and how
the loop runs (:class:`TrainConfig`). Values are resolved in three layers, later ones winning:

  1. the paper's settings (docs/BACKGROUND.md section 5; the dataclass defaults),
  2. a preset (``paper`` = nothing changed, ``quick``, ``smoke``),
  3. the flags the user passed explicitly.

The resolved config is written to ``RUN_DIR/config.json`` and read back (by ``--resume`` /
``--export-only``, evaluate.py and probe_state.py) through ``permakey_tf.runs``, the run folder's
one reader and writer (layout in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

from permakey_tf.config import NOISE_MODES
from permakey_tf.registry import MODELS, UnknownModelError, get_model_spec
from tfds_atari.frames import FRAME_SIZE
from tfds_atari.games import GAMES, UnknownGameError, get_game

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
DISTRIBUTE_MODES = ("none", "mirrored", "multiworker")
PRESETS = ("paper", "quick", "smoke")



class ConfigError(ValueError):
    """A flag or a combination of flags that cannot work; the message says what to change."""


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
      pairs: Transporter only: ``permakey_tf.data.PairConfig`` fields (None = its defaults, the
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
      jit: XLA-compile the train step (False = graph mode; on this CPU XLA was slower).
      distribute: "none", "mirrored" (all local devices) or "multiworker" (TF_CONFIG).
      logdir: root of the run folders (LOGDIR/<game>/<model>/<name>).
      name: run folder name (None = a UTC timestamp).
      image_frames: number of fixed validation frames drawn into TensorBoard each epoch (spread
        evenly over the validation split).
      quality_frames: validation frames (spread over the split) on which keypoint quality
        (permakey_tf.quality: F1 vs the fixed layout, shift gain, probe, ...) is measured and
        logged each epoch; 0 = off.
      statistics_batches: training batches over which BatchNorm's inference statistics are
        recomputed with the current weights before every validation ("precise BatchNorm",
        permakey_tf.batch_norm.recompute_statistics); 0 keeps the moving averages.
      scalar_every_steps: write the per-step TensorBoard scalars every this many steps.
      export_version: SavedModel version directory under RUN_DIR/export (TF Serving layout).
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
    export_version: int = 1


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

    @property
    def batch_size(self) -> int:
        return self.train.batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Whole batches per epoch over the training split (the last partial batch is dropped)."""
        return max(1, self.data.train_frames // self.train.batch_size)


def _from_dict(cls, values: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} fields {unknown}; valid: {sorted(names)}")
    return cls(**values)


def model_config_class(model: str):
    """The config dataclass of ``model`` (permakey_tf.registry); ConfigError if unknown."""
    try:
        return get_model_spec(model).config_class
    except UnknownModelError as error:
        raise ConfigError(str(error)) from None


@dataclasses.dataclass(frozen=True)
class Preset:
    """Changes a preset makes on top of the paper's settings (flags still win)."""

    description: str
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per model
    batch_size: Mapping[str, int] = dataclasses.field(default_factory=dict)
    epochs: Mapping[str, int] = dataclasses.field(default_factory=dict)  # per model, over train
    pairs: Optional[Mapping[str, Any]] = None


PRESET_TABLE: dict[str, Preset] = {
    "paper": Preset(
        description="the paper's experiment: 85k/5k/5k frames, batch 32 (Transporter 64), "
        "up to 100 epochs, early stopping, layers (0, 1), float32",
    ),
    # Sized for the README's 12 minutes on a 2-core CPU: 9 min on an AMD EPYC, 13-14 min on the
    # slowest machine measured, an Intel Xeon without AMX (docs/TRAINING.md).
    "quick": Preset(
        description="9-14 minutes on an idle 2-core CPU: 6,000 training frames, batch 16, "
        "6 epochs (2,250 steps), precision auto; PermaKey with encoder widths (16, 32, 32, 64), "
        "layer 0 only, LSPN widths (64, 32, 32), Adam 1e-3, a fresh PointNet at step 1,125; "
        "Transporter batch 16 (1,000 steps)",
        train={"epochs": 6, "precision": "auto", "image_frames": 8, "quality_frames": 128,
               "statistics_batches": 32},
        data={"train_frames": 6_000, "validation_frames": 256, "test_frames": 512},
        batch_size={"permakey": 16, "transporter": 16},
        models={
            "permakey": {
                "encoder_filters": (16, 32, 32, 64),
                "lsp_layers": (0,),
                "patch_size": 2,
                "lsp_hidden_widths": (64, 32, 32),
                "learning_rate": 1e-3,
                # Half-way (6 epochs x 375 steps), a fresh PointNet on the trained error maps:
                # Pong F1 0.20 -> 0.43 (docs/notes/one-seed-results.md, "The keypoint bottleneck").
                "pointnet_restart_step": 1125,
            },
            "transporter": {"learning_rate": 1e-3},
        },
    ),
    "smoke": Preset(
        description="seconds, for tests: 64/16/16 frames, batch 8, 2 epochs, tiny networks",
        train={"epochs": 2, "image_frames": 4},
        data={"train_frames": 64, "validation_frames": 16, "test_frames": 16},
        batch_size={"permakey": 8, "transporter": 8},
        models={
            "permakey": {
                "encoder_filters": (8, 8, 8, 8),
                "latent_dim": 4,
                "lsp_layers": (0,),
                "lsp_hidden_widths": (16, 8),
                "num_keypoints": 4,
                "learning_rate": 1e-3,
            },
            "transporter": {"encoder_filters": (4, 4, 8, 8), "decoder_filters": (8, 8, 8, 8),
                            "num_keypoints": 4, "learning_rate": 1e-3},
        },
        # 64 frames hold no complete 100-frame window: pair frames 4 steps apart instead.
        pairs={"sampling": "gap", "gap": 4},
    ),
}


# Flags -> where they land. Model-config flags are handled separately.
_DATA_FLAGS = {
    "game": "game",
    "noise": "noise",
    "train_frames": "train_frames",
    "data_dir": "data_dir",
}
_TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "precision": "precision",
    "jit": "jit",
    "distribute": "distribute",
    "logdir": "logdir",
    "name": "name",
}


def parse_layers(text: str) -> tuple[int, ...]:
    """"0,1" -> (0, 1); raises ConfigError naming the problem."""
    try:
        layers = tuple(int(part) for part in str(text).replace(" ", "").split(",") if part != "")
    except ValueError:
        raise ConfigError(
            f"--layers {text!r} is not a comma-separated list of encoder layer indices, e.g. 0,1"
        ) from None
    if not layers:
        raise ConfigError("--layers needs at least one encoder layer index, e.g. 0 or 0,1")
    return layers


def parse_model_options(config_cls, options) -> dict:
    """``["field=value", ...]`` (train.py's --set) -> ``{field: value}`` typed like the config
    dataclass' field (int, float, bool, str, tuples as comma-separated lists, None as "none").
    Raises ConfigError naming an unknown field or a value that does not parse."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    defaults = config_cls()
    changes = {}
    for option in options:
        name, sep, text = str(option).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ConfigError(
                f"--set {option!r}: expected FIELD=VALUE with FIELD one of {config_cls.__name__}'s "
                f"fields: {', '.join(sorted(fields))}"
            )
        changes[name] = _parse_value(name, text.strip(), getattr(defaults, name), fields[name].type)
    return changes


def _parse_value(name: str, text: str, default: Any, annotation: Any) -> Any:
    def fail(kind):
        raise ConfigError(f"--set {name}={text!r}: {name} takes {kind}")

    if text.lower() == "none" and "Optional" in str(annotation):
        return None
    if isinstance(default, bool) or "bool" in str(annotation):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        fail("true or false")
    if isinstance(default, tuple) or "tuple" in str(annotation):
        try:
            return tuple(int(p) if p.strip().lstrip("-").isdigit() else float(p)
                         for p in text.split(",") if p.strip())
        except ValueError:
            fail("a comma-separated list of numbers")
    if isinstance(default, int) or str(annotation) == "int":
        try:
            return int(text)
        except ValueError:
            fail("an integer")
    if isinstance(default, float) or str(annotation) == "float":
        try:
            return float(text)
        except ValueError:
            fail("a number")
    return text


def resolve_config(flags: Mapping[str, Any]) -> RunConfig:
    """Builds the RunConfig from explicitly given flags (None = not given).

    ``flags`` keys are train.py's argparse destinations: game, model, noise, num_keypoints, layers,
    epochs, batch_size, train_frames, seed, data_dir, logdir, name, precision, jit, distribute,
    preset. Raises ConfigError (with the fix in the message) for anything that cannot work.
    """
    flags = {k: v for k, v in flags.items() if v is not None}
    preset_name = flags.get("preset", "paper")
    if preset_name not in PRESET_TABLE:
        raise ConfigError(f"Unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESET_TABLE[preset_name]
    model = flags.get("model", "permakey")
    model_cls = model_config_class(model)
    spec = get_model_spec(model)

    try:
        game = get_game(flags.get("game", DataSettings.game)).name
    except UnknownGameError as error:
        raise ConfigError(str(error)) from None

    data_values = dict(preset.data)
    data_values.update({_DATA_FLAGS[k]: v for k, v in flags.items() if k in _DATA_FLAGS})
    data_values["game"] = game
    if spec.examples == "pairs" and preset.pairs is not None:
        data_values["pairs"] = dict(preset.pairs)
    data = DataSettings(**data_values)
    _check_choice("--noise", data.noise, NOISE_MODES)
    for field in ("train_frames", "validation_frames", "test_frames"):
        if getattr(data, field) < 1:
            raise ConfigError(f"{field} must be >= 1, got {getattr(data, field)}")

    train_values = dict(preset.train)
    train_values["batch_size"] = preset.batch_size.get(model, spec.paper_batch_size)
    if model in preset.epochs:
        train_values["epochs"] = preset.epochs[model]
    train_values["early_stopping_patience"] = spec.paper_patience
    train_values.update({_TRAIN_FLAGS[k]: v for k, v in flags.items() if k in _TRAIN_FLAGS})
    train = TrainConfig(**train_values)
    _check_choice("--precision", train.precision, PRECISIONS)
    _check_choice("--distribute", train.distribute, DISTRIBUTE_MODES)
    if train.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {train.epochs}")
    if train.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {train.batch_size}")
    if train.batch_size > data.train_frames:
        raise ConfigError(
            f"--batch-size {train.batch_size} is larger than the {data.train_frames} training "
            "frames: lower --batch-size or raise --train-frames"
        )
    if train.name is not None and (not train.name or "/" in train.name or train.name in (".", "..")):
        raise ConfigError(f"--name {train.name!r} must be a plain folder name (no '/')")
    if train.distribute == "multiworker" and train.precision == "auto":
        raise ConfigError(
            "--precision auto is measured by each process and workers could choose differently: "
            "pass --precision float32 or mixed_bfloat16 with --distribute multiworker"
        )
    if train.distribute == "multiworker" and train.name is None:
        raise ConfigError(
            "--distribute multiworker needs --name: every worker must write to the same run "
            "folder name, and a timestamp would differ between workers"
        )

    model_changes = dict(preset.models.get(model, {}))
    if "num_keypoints" in flags:
        model_changes["num_keypoints"] = int(flags["num_keypoints"])
    if "layers" in flags:
        if not spec.has_field("lsp_layers"):
            raise ConfigError(f"--layers selects PermaKey's encoder layers; {spec.title} has none")
        layers = flags["layers"]
        model_changes["lsp_layers"] = parse_layers(layers) if isinstance(layers, str) else tuple(layers)
    if flags.get("patch_size") is not None:
        if not spec.has_field("patch_size"):
            raise ConfigError(f"--patch-size sets PermaKey's local prediction cells; {spec.title} has none")
        if int(flags["patch_size"]) < 1:
            raise ConfigError(f"--patch-size must be >= 1, got {flags['patch_size']}")
        model_changes["patch_size"] = int(flags["patch_size"])
    model_changes.update(parse_model_options(model_cls, flags.get("model_options") or ()))
    try:
        model_config = model_cls.for_game(game, **model_changes)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"Invalid {model} configuration: {error}") from None
    if model_config.image_size != FRAME_SIZE:
        raise ConfigError(f"image_size {model_config.image_size} does not fit the data: atari_frames "
                          f"holds {FRAME_SIZE}x{FRAME_SIZE} frames; leave image_size at {FRAME_SIZE}")

    seed = int(flags.get("seed", 0))
    return RunConfig(
        model=model,
        game=game,
        seed=seed,
        preset=preset_name,
        model_config=model_config,
        data=data,
        train=train,
    )


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} {value!r} is not one of: {', '.join(choices)}")


def valid_games() -> list[str]:
    return sorted(GAMES)


def resume_config(run_dir: Path, flags: Mapping[str, Any]) -> RunConfig:
    """The saved config of ``run_dir``; --epochs, --jit and --distribute may change (they do not
    change the computation), other flags must agree with it."""
    from permakey_tf.runs import load_config

    saved = load_config(run_dir)
    flags = {k: v for k, v in flags.items() if v is not None}
    saved_flat = _flat_flags(saved)
    conflicts = []
    for key, value in flags.items():
        if key in ("epochs", "jit", "distribute", "resume", "export_only", "logdir", "name"):
            continue
        if key == "game":
            try:
                value = get_game(value).name
            except UnknownGameError as error:
                raise ConfigError(str(error)) from None
        if key == "model_options":
            changes = parse_model_options(type(saved.model_config), value)
            conflicts += [f"--set {field}={v!r} (the run has {getattr(saved.model_config, field)!r})"
                          for field, v in changes.items() if getattr(saved.model_config, field) != v]
            continue
        if key == "layers":
            value = parse_layers(value) if isinstance(value, str) else tuple(value)
        if key in saved_flat and saved_flat[key] != value:
            conflicts.append(f"--{key.replace('_', '-')} {value!r} (the run has {saved_flat[key]!r})")
    if conflicts:
        raise ConfigError(
            f"--resume continues {run_dir} with its saved config.json; these flags conflict with "
            f"it: {'; '.join(conflicts)}. Drop them, or start a new run."
        )
    if "epochs" in flags:
        if int(flags["epochs"]) < 1:
            raise ConfigError(f"--epochs must be >= 1, got {flags['epochs']}")
        saved = dataclasses.replace(saved, train=dataclasses.replace(saved.train, epochs=int(flags["epochs"])))
    for key in ("jit", "distribute"):
        if key in flags:
            saved = dataclasses.replace(saved, train=dataclasses.replace(saved.train, **{key: flags[key]}))
    _check_choice("--distribute", saved.train.distribute, DISTRIBUTE_MODES)
    return saved


def _flat_flags(config: RunConfig) -> dict:
    flat = {
        "game": config.game,
        "model": config.model,
        "preset": config.preset,
        "noise": config.data.noise,
        "train_frames": config.data.train_frames,
        "data_dir": config.data.data_dir,
        "batch_size": config.train.batch_size,
        "precision": config.train.precision,
        "seed": config.seed,
        "num_keypoints": config.model_config.num_keypoints,
    }
    if get_model_spec(config.model).has_field("lsp_layers"):
        flat["layers"] = tuple(config.model_config.lsp_layers)
        flat["patch_size"] = config.model_config.patch_size
    return flat
